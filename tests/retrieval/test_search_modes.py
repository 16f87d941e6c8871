"""Search modes (dense, bm25, hybrid), filters and recency on a real snapshot built with the fake embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.settings import ChunkingSettings
from retrieval.bm25 import BM25Index
from retrieval.chunking import chunk_int_id, embedding_text
from retrieval.embedders import Embedder
from retrieval.errors import CorruptSnapshotError, RetrievalError
from retrieval.hybrid import reciprocal_rank_fusion, source_glob, source_prefix
from retrieval.search import MIN_CANDIDATES, OVERFETCH, Retriever, Snapshot, open_retriever
from retrieval.snapshots import build_snapshot
from retrieval.sources import Document

DAY = 86_400.0
NOW = 1_800_000_000.0


@pytest.fixture
def corpus(documents: list[Document]) -> list[Document]:
    """The shared corpus plus two equally relevant notices, one a year older than the other."""
    old = Document.from_text(
        "notices/2025.md", "# Notice\n\nThe Emberfox stove is on sale.\n", NOW - 365 * DAY
    )
    new = Document.from_text("notices/2026.md", "# Notice\n\nThe Emberfox stove is on offer.\n", NOW - DAY)
    return [*documents, old, new]


@pytest.fixture
def index_dir(tmp_path: Path, corpus: list[Document], embedder: Embedder) -> Path:
    build_snapshot(corpus, embedder, ChunkingSettings(), tmp_path / "index", progress=False)
    return tmp_path / "index"


@pytest.fixture
def retriever(index_dir: Path, embedder: Embedder) -> Retriever:
    retriever = Retriever(Snapshot.open(index_dir / "current"), embedder, clock=lambda: NOW)
    yield retriever
    retriever.close()


def cosine(embedder: Embedder, query: str, hit_text: str) -> float:
    a, b = embedder.embed([query, hit_text])
    return float(np.dot(a, b))


def test_dense_is_the_default_and_keeps_its_scores(retriever: Retriever, embedder: Embedder) -> None:
    hits = retriever.search("hollowpeak jacket price", 3)
    assert hits == retriever.search("hollowpeak jacket price", 3, mode="dense")
    assert hits[0].chunk.title == "Jacket price"
    for hit in hits:
        assert hit.scores == {"dense": hit.score}
        assert hit.score == pytest.approx(
            cosine(embedder, "hollowpeak jacket price", embedding_text(hit.chunk))
        )


def test_bm25_mode_ranks_by_the_raw_bm25_score(retriever: Retriever) -> None:
    hits = retriever.search("refunds card", 5, mode="bm25")
    expected = retriever.snapshot.bm25.search("refunds card", 5)
    assert [(chunk_int_id(h.chunk.chunk_id), h.score) for h in hits] == expected
    assert hits[0].chunk.title == "Refunds"
    assert all(h.scores == {"bm25": h.score} for h in hits)
    assert retriever.search("zeppelin", 5, mode="bm25") == []  # no shared term, no hit


def test_hybrid_is_the_rrf_of_both_rankings(retriever: Retriever, embedder: Embedder) -> None:
    query, k = "tent price dollars", 2
    hits = retriever.search(query, k, mode="hybrid")
    vector = embedder.embed([query])[0]
    depth = max(k * OVERFETCH, MIN_CANDIDATES)
    dense = [i for i, _ in retriever.snapshot.index.search(vector, depth)]
    lexical = [i for i, _ in retriever.snapshot.bm25.search(query, depth)]
    expected = reciprocal_rank_fusion([dense, lexical])[:k]
    assert [(chunk_int_id(h.chunk.chunk_id), h.score) for h in hits] == expected
    assert hits[0].chunk.title == "Tent price"
    for hit in hits:
        assert hit.scores["rrf"] == hit.score
        # The cosine is there for every hit, also those only BM25 found.
        assert hit.scores["dense"] == pytest.approx(
            cosine(embedder, query, embedding_text(hit.chunk)), abs=1e-5
        )


def test_hybrid_hit_found_by_bm25_only_gets_its_cosine(retriever: Retriever, embedder: Embedder) -> None:
    hits = retriever.search("receipt", 20, mode="hybrid")
    assert {h.chunk.source_id for h in hits} >= {"policies/returns.md"}
    assert all("dense" in h.scores for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_k_and_blank_queries(retriever: Retriever) -> None:
    for mode in ("dense", "bm25", "hybrid"):
        assert retriever.search("   ", 3, mode=mode) == []
        assert retriever.search("tent", 0, mode=mode) == []
    assert len(retriever.search("tent price dollars stove", 100, mode="hybrid")) == 7  # every chunk
    with pytest.raises(ValueError, match="unknown search mode"):
        retriever.search("tent", 1, mode="sparse")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_filters(retriever: Retriever, mode: str) -> None:
    hits = retriever.search("price refunds returns stove", 10, mode=mode, filters=source_prefix("policies/"))
    assert hits and {h.chunk.source_id for h in hits} == {"policies/returns.md"}
    both = [source_prefix("notices/"), source_glob("*2026.md")]
    assert [h.chunk.source_id for h in retriever.search("emberfox stove", 5, mode=mode, filters=both)] == [
        "notices/2026.md"
    ]


def test_a_filter_that_keeps_a_low_ranked_chunk_fetches_until_it_is_found(retriever: Retriever) -> None:
    dense = retriever.search("hollowpeak jacket price", 7)
    last = dense[-1].chunk.source_id
    [hit] = retriever.search("hollowpeak jacket price", 1, filters=lambda c: c.source_id == last)
    assert hit.chunk.source_id == last
    assert retriever.search("hollowpeak", 3, filters=lambda c: False) == []


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_recency_prefers_the_newer_of_two_equal_chunks(retriever: Retriever, mode: str) -> None:
    old, new = retriever.search("emberfox stove", 2, mode=mode)
    assert old.score == pytest.approx(new.score)  # equally relevant: the older one happens to come first
    hits = retriever.search("emberfox stove", 2, mode=mode, recency_half_life_days=365)
    assert [h.chunk.source_id for h in hits] == ["notices/2026.md", "notices/2025.md"]
    new, old = hits
    assert new.scores["recency"] == pytest.approx(0.5 ** (1 / 365))
    assert old.scores["recency"] == pytest.approx(0.5)
    base = "dense" if mode == "dense" else "bm25" if mode == "bm25" else "rrf"
    assert new.score == pytest.approx(new.scores[base] * new.scores["recency"])


def test_snapshot_without_bm25_serves_dense_only(index_dir: Path, embedder: Embedder) -> None:
    opened = Snapshot.open(index_dir / "current")
    dense_only = Retriever(Snapshot(opened.path, opened.manifest, opened.index, opened.store), embedder)
    assert dense_only.modes == ("dense",)
    assert dense_only.search("tent", 1)
    with pytest.raises(RetrievalError, match="no BM25 index"):
        dense_only.search("tent", 1, mode="hybrid")
    dense_only.close()


def test_snapshot_opens_its_bm25_index(index_dir: Path, embedder: Embedder) -> None:
    retriever = open_retriever(index_dir, embedder)
    assert isinstance(retriever.snapshot.bm25, BM25Index)
    assert len(retriever.snapshot.bm25) == retriever.snapshot.manifest.chunk_count
    assert retriever.modes == ("dense", "bm25", "hybrid")
    retriever.close()


def test_missing_bm25_directory_is_a_corrupt_snapshot(index_dir: Path) -> None:
    snapshot_dir = (index_dir / "current").resolve()
    for path in (snapshot_dir / "bm25").iterdir():
        path.unlink()
    (snapshot_dir / "bm25").rmdir()
    with pytest.raises(CorruptSnapshotError, match="BM25"):
        Snapshot.open(snapshot_dir)
