"""Searching the current snapshot, and refusing an embedder it was not built with."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from core.settings import ChunkingSettings
from retrieval.chunking import embedding_text
from retrieval.embedders import Embedder
from retrieval.errors import EmbedderMismatchError, NoSnapshotError
from retrieval.search import Retriever, Snapshot, open_retriever
from retrieval.snapshots import build_snapshot
from retrieval.sources import Document


@pytest.fixture
def index_dir(tmp_path: Path, documents: list[Document], embedder: Embedder) -> Path:
    build_snapshot(documents, embedder, ChunkingSettings(), tmp_path / "index", progress=False)
    return tmp_path / "index"


def test_finds_the_chunk_that_shares_the_query_words(index_dir: Path, embedder: Embedder) -> None:
    retriever = open_retriever(index_dir, embedder)
    hits = retriever.search("how much does the hollowpeak jacket cost", 3)
    assert len(hits) == 3
    assert (hits[0].chunk.source_id, hits[0].chunk.title) == ("pricing.md", "Jacket price")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_score_is_the_cosine_similarity(index_dir: Path, embedder: Embedder) -> None:
    [hit] = open_retriever(index_dir, embedder).search("refunds card", 1)
    query, chunk = embedder.embed(["refunds card", embedding_text(hit.chunk)])
    assert hit.score == pytest.approx(float(np.dot(query, chunk)), abs=1e-5)


def test_k_bounds(index_dir: Path, embedder: Embedder) -> None:
    retriever = open_retriever(index_dir, embedder)
    assert len(retriever.search("tent", 100)) == 5
    assert retriever.search("tent", 0) == []
    assert retriever.search("   ", 3) == []


def test_retriever_names_its_snapshot(index_dir: Path, embedder: Embedder) -> None:
    retriever = open_retriever(index_dir, embedder)
    assert retriever.snapshot_id == (index_dir / "current").resolve().name
    with Snapshot.open(index_dir / "current") as snapshot:
        assert snapshot.snapshot_id == retriever.snapshot_id
        assert snapshot.manifest.chunk_count == len(snapshot.index) == snapshot.store.chunk_count()


@pytest.mark.parametrize(("name", "dimension"), [("another-model", 64), ("fake-hashing-64", 32)])
def test_other_embedder_is_refused(
    index_dir: Path, make_embedder: Callable[..., Embedder], name: str, dimension: int
) -> None:
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'fake-hashing-64'"):
        open_retriever(index_dir, make_embedder(name=name, dimension=dimension))


def test_a_new_build_is_served_by_a_new_retriever(
    index_dir: Path, documents: list[Document], embedder: Embedder
) -> None:
    old = open_retriever(index_dir, embedder)
    recall = Document.from_text("recall.md", "# Recall\n\nThe Tidewick headlamp is recalled.\n")
    build_snapshot([*documents, recall], embedder, ChunkingSettings(), index_dir, progress=False)
    new = open_retriever(index_dir, embedder)
    assert new.search("tidewick headlamp recalled", 1)[0].chunk.source_id == "recall.md"
    # The old snapshot is immutable and still open: requests in flight keep their answers.
    assert all(h.chunk.source_id != "recall.md" for h in old.search("tidewick headlamp recalled", 5))
    assert old.snapshot_id != new.snapshot_id


def test_concurrent_searches(index_dir: Path, embedder: Embedder) -> None:
    retriever = open_retriever(index_dir, embedder)
    queries = ["tent price", "refunds", "stores open", "returns receipt"] * 16
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda q: retriever.search(q, 2), queries))
    assert all(len(hits) == 2 for hits in results)


def test_no_index_yet(tmp_path: Path, embedder: Embedder) -> None:
    with pytest.raises(NoSnapshotError, match="lorag index build"):
        open_retriever(tmp_path / "index", embedder)


def test_retriever_accepts_an_opened_snapshot(index_dir: Path, embedder: Embedder) -> None:
    retriever = Retriever(Snapshot.open(index_dir / "current"), embedder)
    assert retriever.search("nine in the morning", 1)[0].chunk.source_id == "notes.txt"
    retriever.close()


def test_snapshot_with_a_missing_part_is_refused(index_dir: Path) -> None:
    snapshot_dir = (index_dir / "current").resolve()
    (snapshot_dir / "dense.faiss").unlink()
    with pytest.raises(FileNotFoundError, match="dense.faiss"):
        Snapshot.open(snapshot_dir)
