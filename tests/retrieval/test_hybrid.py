"""Rank fusion, recency decay and chunk filters: pure functions, checked against hand-computed values."""

from __future__ import annotations

import pytest

from core.types import Chunk
from retrieval.hybrid import (
    age_days,
    all_of,
    filters_from_spec,
    has_tag,
    recency_weight,
    reciprocal_rank_fusion,
    source_glob,
    source_prefix,
)


def test_rrf_hand_computed() -> None:
    # a: 1/(60+1) + 1/(60+3); b: 1/(60+2) + 1/(60+1); c: 1/(60+3); d: 1/(60+2)
    fused = dict(reciprocal_rank_fusion([[1, 2, 3], [2, 4, 1]]))
    assert fused == pytest.approx({1: 1 / 61 + 1 / 63, 2: 1 / 62 + 1 / 61, 3: 1 / 63, 4: 1 / 62})
    assert [i for i, _ in reciprocal_rank_fusion([[1, 2, 3], [2, 4, 1]])] == [2, 1, 4, 3]


def test_rrf_k_and_weights() -> None:
    fused = reciprocal_rank_fusion([[1, 2], [2, 1]], k=0, weights=[2.0, 1.0])
    # 1: 2/1 + 1/2 = 2.5; 2: 2/2 + 1/1 = 2.0
    assert fused == [(1, pytest.approx(2.5)), (2, pytest.approx(2.0))]


def test_rrf_ties_keep_first_seen_order_and_duplicates_count_once() -> None:
    assert [i for i, _ in reciprocal_rank_fusion([[7, 8], [8, 7]])] == [7, 8]
    assert reciprocal_rank_fusion([[5, 5, 6]], k=0) == [(5, 1.0), (6, pytest.approx(1 / 3))]


def test_rrf_edge_cases() -> None:
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []
    with pytest.raises(ValueError, match="2 weights for 1 rankings"):
        reciprocal_rank_fusion([[1]], weights=[1.0, 1.0])
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[1]], k=-1)


def test_recency_weight_halves_every_half_life() -> None:
    assert recency_weight(0, 30) == 1.0
    assert recency_weight(30, 30) == pytest.approx(0.5)
    assert recency_weight(90, 30) == pytest.approx(0.125)
    assert recency_weight(-5, 30) == 1.0  # a future timestamp does not boost
    with pytest.raises(ValueError):
        recency_weight(1, 0)
    assert age_days(modified=0.0, now=86_400.0 * 3) == 3.0


def chunk(source_id: str, **metadata: object) -> Chunk:
    return Chunk("c" * 16, source_id, "text", metadata=dict(metadata))


def test_source_filters() -> None:
    assert source_prefix("policies/")(chunk("policies/returns.md"))
    assert not source_prefix("policies/")(chunk("pricing.md"))
    assert source_glob("*.md")(chunk("policies/returns.md"))  # `*` crosses directories
    assert not source_glob("*.txt")(chunk("policies/returns.md"))
    assert source_glob("policies/r*")(chunk("policies/returns.md"))


def test_tag_filter() -> None:
    assert has_tag("faq")(chunk("a.md", tags=["faq", "2026"]))
    assert has_tag("faq")(chunk("a.md", tags="faq"))
    assert not has_tag("faq")(chunk("a.md", tags="faqs"))
    assert not has_tag("faq")(chunk("a.md"))


def test_all_of_and_spec() -> None:
    assert all_of([])(chunk("x"))
    keep = filters_from_spec({"source_prefix": "docs/", "tags": ["faq"]})
    assert keep(chunk("docs/a.md", tags=["faq"]))
    assert not keep(chunk("docs/a.md", tags=["other"]))
    assert not keep(chunk("blog/a.md", tags=["faq"]))
    assert filters_from_spec({"source_glob": "*.txt", "tags": "faq"})(chunk("n.txt", tags=["faq"]))
    with pytest.raises(ValueError, match="unknown filter keys"):
        filters_from_spec({"author": "me"})
