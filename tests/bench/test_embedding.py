"""The embedder-backend benchmark's code path, on synthetic data with fake embedders."""

from __future__ import annotations

import pytest

from bench.embedding import run_embed_bench
from tests.retrieval.fakes import HashingEmbedder


def test_quick_embed_bench_compares_every_embedder_with_the_first() -> None:
    printed: list[str] = []
    embedders = [HashingEmbedder("fake@torch"), HashingEmbedder("fake@onnx")]
    rows = run_embed_bench(None, out=printed.append, quick=True, embedders=embedders)
    [table] = printed
    by_name = {row["measurement"]: row for row in rows}
    for expected in (
        "embed, fake@torch",
        "embed, fake@onnx",
        "speed-up, fake@onnx",
        "cosine to fake@torch, fake@onnx",
        "query embedding p50, fake@onnx",
        "recall@10 dense, fake@torch",
        "recall@10 dense, fake@onnx",
    ):
        assert expected in by_name and expected in table
    # The same fake twice: identical vectors, identical recall, so the recall target is met.
    assert by_name["cosine to fake@torch, fake@onnx"]["raw"] == 1.0
    recall = by_name["recall@10 dense, fake@onnx"]
    assert recall["raw"] == by_name["recall@10 dense, fake@torch"]["raw"] and "(met)" in recall["target"]
    # Both took turns on all 150 synthetic chunks (plus the 8-text warm-up), before the queries and corpus.
    assert all(embedder.texts[8:158] == embedders[0].texts[8:158] for embedder in embedders)
    assert len(embedders[0].texts[8:158]) == 150


def test_the_bench_needs_an_embedder() -> None:
    with pytest.raises(ValueError, match="at least one embedder"):
        run_embed_bench(None, refs=[], quick=True)
