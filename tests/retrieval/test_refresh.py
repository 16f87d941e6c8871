"""Incremental refresh, deleting a source, retention, rollback, stats and the writer lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from core.settings import ChunkingSettings, Settings
from core.types import Chunk
from retrieval import build
from retrieval.errors import (
    EmbedderMismatchError,
    GateRefusedError,
    RefreshInProgressError,
    RetrievalError,
)
from retrieval.index import HNSW_DEFAULTS, DenseIndex
from retrieval.locking import refresh_lock
from retrieval.refresh import RefreshResult, delete_source, refresh_index, rollback, stats
from retrieval.search import open_retriever
from retrieval.snapshots import (
    VECTORS,
    Manifest,
    build_snapshot,
    current_snapshot_dir,
    list_snapshots,
    load_vectors,
    prune,
)
from retrieval.sources import Document, Skipped
from retrieval.store import ChunkStore
from tests.retrieval.fakes import HashingEmbedder

CHUNKING = ChunkingSettings()
NEW_JACKET = "The Hollowpeak jacket now costs 149 dollars."
RECALL = Document.from_text("recall.md", "# Recall\n\nThe Tidewick headlamp is recalled.\n")


def refresh(documents: Sequence[Document], embedder: HashingEmbedder, index_dir: Path, **kw) -> RefreshResult:
    return refresh_index(documents, embedder, CHUNKING, index_dir, progress=False, **kw)


def edited(documents: list[Document]) -> list[Document]:
    """Jacket price changed, notes.txt deleted, recall.md added; returns.md untouched."""
    docs = {doc.source_id: doc for doc in documents}
    pricing = docs["pricing.md"].text.replace("The Hollowpeak jacket costs 189 dollars.", NEW_JACKET)
    del docs["notes.txt"]
    docs["pricing.md"] = Document.from_text("pricing.md", pricing)
    return sorted([*docs.values(), RECALL], key=lambda doc: doc.source_id)


def stored_chunks(index_dir: Path) -> dict[str, Chunk]:
    with ChunkStore.open(current_snapshot_dir(index_dir) / "chunks.sqlite") as store:
        return {chunk.chunk_id: chunk for chunk in store.chunks()}


def found_sources(index_dir: Path, embedder: HashingEmbedder, query: str) -> list[str]:
    retriever = open_retriever(index_dir, embedder)
    try:
        return [hit.chunk.source_id for hit in retriever.search(query, 100)]
    finally:
        retriever.close()


def test_first_refresh_is_a_full_build(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    skipped = [Skipped("bad.txt", "is not UTF-8 text")]
    result = refresh(documents, embedder, tmp_path / "index", skipped=skipped)
    assert (result.status, result.full_rebuild) == ("built", "no current snapshot")
    assert (result.added, result.changed, result.deleted, result.unchanged) == (3, 0, 0, 0)
    assert (result.chunks_embedded, result.chunks_reused) == (5, 0)
    assert result.snapshot_id == current_snapshot_dir(tmp_path / "index").name
    assert result.skipped == tuple(skipped) and result.seconds >= 0
    assert "built: snapshot" in result.summary() and "1 skipped" in result.summary()


def test_nothing_changed_makes_no_snapshot(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    first = refresh(documents, embedder, tmp_path / "index")
    calls = embedder.calls
    touched = [Document(**{**vars(doc), "modified": doc.modified + 60}) for doc in documents]
    result = refresh(touched, embedder, tmp_path / "index")
    assert (result.status, result.snapshot_id) == ("unchanged", first.snapshot_id)
    assert (result.unchanged, result.chunks_embedded) == (3, 0)
    assert embedder.calls == calls
    assert len(list_snapshots(tmp_path / "index")) == 1


def test_only_new_chunks_are_embedded(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    index_dir = tmp_path / "index"
    first = refresh(documents, embedder, index_dir)
    before = stored_chunks(index_dir)
    embedder.texts.clear()
    new_documents = edited(documents)
    result = refresh(new_documents, embedder, index_dir)

    assert (result.status, result.full_rebuild) == ("refreshed", None)
    assert (result.added, result.changed, result.deleted, result.unchanged) == (1, 1, 1, 1)
    assert (result.chunks_embedded, result.chunks_reused) == (2, 3)
    assert embedder.texts == [f"Jacket price\n\n{NEW_JACKET}", "Recall\n\nThe Tidewick headlamp is recalled."]
    after = stored_chunks(index_dir)
    # Unchanged text keeps its chunk id; the changed and deleted chunks are gone.
    kept = {
        cid
        for cid, chunk in before.items()
        if chunk.source_id == "policies/returns.md" or "Driftglass" in chunk.text
    }
    assert len(kept) == 3 and kept <= set(after)
    assert not [c for c in after.values() if c.source_id == "notes.txt" or "189" in c.text]
    manifest = Manifest.read(current_snapshot_dir(index_dir))
    assert manifest.parent == first.snapshot_id
    assert manifest.documents == {doc.source_id: doc.content_hash for doc in new_documents}
    # Each chunk names its document's revision, the reused ones included.
    revision = {doc.source_id: doc.content_hash for doc in new_documents}
    assert all(c.metadata["content_hash"] == revision[c.source_id] for c in after.values())


def test_deleted_and_replaced_text_is_never_retrieved_again(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    index_dir = tmp_path / "index"
    refresh(documents, embedder, index_dir)
    assert "notes.txt" in found_sources(index_dir, embedder, "stores open nine morning")
    refresh(edited(documents), embedder, index_dir)
    assert "notes.txt" not in found_sources(index_dir, embedder, "stores open nine morning")
    hits = open_retriever(index_dir, embedder).search("hollowpeak jacket price", 100)
    assert NEW_JACKET in hits[0].chunk.text
    assert not any("189" in hit.chunk.text for hit in hits)
    assert found_sources(index_dir, embedder, "tidewick headlamp recalled")[0] == "recall.md"


def test_reused_vectors_equal_a_full_build(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    refresh(documents, embedder, tmp_path / "index")
    refresh(edited(documents), embedder, tmp_path / "index")
    full = build_snapshot(edited(documents), HashingEmbedder(), CHUNKING, tmp_path / "full", progress=False)
    incremental = load_vectors(current_snapshot_dir(tmp_path / "index"))
    expected = load_vectors(full)
    assert incremental.keys() == expected.keys()
    assert all(np.allclose(incremental[i], expected[i]) for i in expected)


def test_renamed_heading_is_embedded_again_under_the_same_id(
    tmp_path: Path, embedder: HashingEmbedder
) -> None:
    index_dir = tmp_path / "index"
    refresh([Document.from_text("a.md", "## Tent price\n\nThe tent costs 249.\n")], embedder, index_dir)
    before = set(stored_chunks(index_dir))
    embedder.texts.clear()
    result = refresh(
        [Document.from_text("a.md", "## Tent cost\n\nThe tent costs 249.\n")], embedder, index_dir
    )
    assert set(stored_chunks(index_dir)) == before
    assert (result.chunks_embedded, embedder.texts) == (1, ["Tent cost\n\nThe tent costs 249."])


def test_chunker_change_forces_a_full_rebuild(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    refresh(documents, embedder, tmp_path / "index")
    other = ChunkingSettings(max_tokens=100, overlap=10)
    result = refresh_index(documents, embedder, other, tmp_path / "index", progress=False)
    assert result.status == "built" and "chunker config changed" in (result.full_rebuild or "")
    assert (result.unchanged, result.chunks_embedded, result.chunks_reused) == (3, 5, 0)
    assert "full rebuild: chunker config changed" in result.summary()


def test_embedder_change_forces_a_full_rebuild(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    refresh(documents, embedder, tmp_path / "index")
    result = refresh(documents, HashingEmbedder(name="other", dimension=32), tmp_path / "index")
    assert result.status == "built"
    assert result.full_rebuild == "embedder changed from 'fake-hashing-64' (64) to 'other' (32)"
    assert Manifest.read(current_snapshot_dir(tmp_path / "index")).dimension == 32


def test_snapshot_without_stored_vectors_is_rebuilt(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    refresh(documents, embedder, tmp_path / "index")
    (current_snapshot_dir(tmp_path / "index") / VECTORS).unlink()  # as built before vectors were kept
    result = refresh(edited(documents), embedder, tmp_path / "index")
    assert result.status == "built" and "does not store its vectors" in (result.full_rebuild or "")


def test_every_snapshot_has_a_bm25_index(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    bm25 = pytest.importorskip("retrieval.bm25")
    refresh(documents, embedder, tmp_path / "index")
    refresh(edited(documents), embedder, tmp_path / "index")
    path = current_snapshot_dir(tmp_path / "index")
    index = bm25.BM25Index.load(path / "bm25")
    assert Manifest.read(path).bm25 and len(index) == Manifest.read(path).chunk_count == 5
    [(top, _), *_] = index.search("tidewick", 3)
    with ChunkStore.open(path / "chunks.sqlite") as store:
        assert store.get([top])[top].source_id == "recall.md"


def test_delete_source_embeds_nothing(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    index_dir = tmp_path / "index"
    first = refresh(documents, embedder, index_dir)
    calls = embedder.calls
    snapshot_id = delete_source(index_dir, "notes.txt", embedder)
    assert embedder.calls == calls
    manifest = Manifest.read(current_snapshot_dir(index_dir))
    assert (manifest.snapshot_id, manifest.parent) == (snapshot_id, first.snapshot_id)
    assert set(manifest.documents) == {"pricing.md", "policies/returns.md"}
    assert "notes.txt" not in found_sources(index_dir, embedder, "stores open nine morning")
    assert manifest.chunk_count == 4 == len(load_vectors(current_snapshot_dir(index_dir)))
    # Still in the corpus, so the next refresh brings it back, reusing every other vector.
    result = refresh(documents, embedder, index_dir)
    assert (result.added, result.chunks_embedded, result.chunks_reused) == (1, 1, 4)


def test_delete_source_takes_a_jsonl_file_with_its_records(tmp_path: Path, embedder: HashingEmbedder) -> None:
    docs = [
        Document.from_text("faq.jsonl#1", "Tents ship in two days.", metadata={"tags": ["ops"]}),
        Document.from_text("faq.jsonl#2", "Jackets ship in a week."),
        Document.from_text("hours.md", "Open at nine."),
    ]
    refresh(docs, embedder, tmp_path / "index")
    delete_source(tmp_path / "index", "faq.jsonl#2")
    assert set(Manifest.read(current_snapshot_dir(tmp_path / "index")).documents) == {
        "faq.jsonl#1",
        "hours.md",
    }
    [chunk] = [c for c in stored_chunks(tmp_path / "index").values() if c.source_id == "faq.jsonl#1"]
    assert chunk.metadata["tags"] == ["ops"]
    delete_source(tmp_path / "index", "faq.jsonl")
    assert set(Manifest.read(current_snapshot_dir(tmp_path / "index")).documents) == {"hours.md"}


def test_delete_source_refusals(tmp_path: Path, documents: list[Document], embedder: HashingEmbedder) -> None:
    refresh(documents, embedder, tmp_path / "index")
    with pytest.raises(RetrievalError, match="'nowhere.md' is not in snapshot"):
        delete_source(tmp_path / "index", "nowhere.md")
    with pytest.raises(EmbedderMismatchError):
        delete_source(tmp_path / "index", "notes.txt", HashingEmbedder(name="other"))
    delete_source(tmp_path / "index", "notes.txt")
    delete_source(tmp_path / "index", "pricing.md")
    with pytest.raises(RetrievalError, match="would leave the index empty"):
        delete_source(tmp_path / "index", "policies/returns.md")


def three_snapshots(index_dir: Path, documents: list[Document], embedder: HashingEmbedder) -> list[str]:
    ids = [refresh(documents, embedder, index_dir).snapshot_id]
    ids.append(refresh([*documents, RECALL], embedder, index_dir).snapshot_id)
    ids.append(refresh(edited(documents), embedder, index_dir).snapshot_id)
    return ids


def test_retention_keeps_the_newest(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    index_dir = tmp_path / "index"
    for n in range(5):
        extra = Document.from_text(f"extra{n}.md", f"Extra notice number {n}.\n")
        refresh([*documents, extra], embedder, index_dir, keep=3)
    snapshots = list_snapshots(index_dir)
    assert len(snapshots) == 3 and snapshots[-1].current
    assert not [p for p in (index_dir / "snapshots").iterdir() if p.name.startswith(".")]


def test_retention_never_removes_current_or_its_parent(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    first, second, third = three_snapshots(tmp_path / "index", documents, embedder)
    assert rollback(tmp_path / "index") == second
    assert prune(tmp_path / "index", keep=1) == [third]
    assert [s.snapshot_id for s in list_snapshots(tmp_path / "index")] == [first, second]


def test_rollback(tmp_path: Path, documents: list[Document], embedder: HashingEmbedder) -> None:
    index_dir = tmp_path / "index"
    first, second, third = three_snapshots(index_dir, documents, embedder)
    assert [(s.snapshot_id, s.current) for s in list_snapshots(index_dir)] == [
        (first, False),
        (second, False),
        (third, True),
    ]
    assert "recall.md" in found_sources(index_dir, embedder, "tidewick headlamp")
    assert rollback(index_dir) == second
    assert rollback(index_dir) == first
    assert [s.snapshot_id for s in list_snapshots(index_dir) if s.current] == [first]
    assert "recall.md" not in found_sources(index_dir, embedder, "tidewick headlamp")
    with pytest.raises(RetrievalError, match=f"snapshot {first} has no parent"):
        rollback(index_dir)


def test_rollback_to_a_removed_parent_is_refused(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    index_dir = tmp_path / "index"
    first, second, _ = three_snapshots(index_dir, documents, embedder)
    assert prune(index_dir, keep=1) == [first]
    assert rollback(index_dir) == second
    with pytest.raises(RetrievalError, match=f"cannot roll back to {first}, the parent of {second}"):
        rollback(index_dir)


def test_stats(tmp_path: Path, documents: list[Document], embedder: HashingEmbedder) -> None:
    first = refresh(documents, embedder, tmp_path / "index")
    second = refresh(edited(documents), embedder, tmp_path / "index")
    numbers = stats(tmp_path / "index")
    assert numbers["size_bytes"] > 0 and numbers["created_at"]
    del numbers["size_bytes"], numbers["created_at"]
    assert numbers == {
        "snapshot_id": second.snapshot_id,
        "documents": 3,
        "chunks": 5,
        "embedder": "fake-hashing-64",
        "dimension": 64,
        "parent": first.snapshot_id,
        "bm25": True,
        "snapshots": 2,
    }


class BlockingEmbedder(HashingEmbedder):
    """Holds its first `embed` call until released: a refresh that is busy embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.started.set()
        assert self.release.wait(30)
        return super().embed(texts)


def test_a_second_writer_is_refused_while_one_runs(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    index_dir = tmp_path / "index"
    refresh(documents, embedder, index_dir)
    slow = BlockingEmbedder()
    results: list[RefreshResult] = []
    worker = threading.Thread(target=lambda: results.append(refresh(edited(documents), slow, index_dir)))
    worker.start()
    try:
        assert slow.started.wait(30)
        message = f"another build, refresh or rollback of {index_dir} is running \\(pid {os.getpid()} "
        with pytest.raises(RefreshInProgressError, match=message):
            refresh(edited(documents), embedder, index_dir)
        with pytest.raises(RefreshInProgressError):
            build_snapshot(documents, embedder, CHUNKING, index_dir, progress=False)
        with pytest.raises(RefreshInProgressError):
            delete_source(index_dir, "notes.txt")
        with pytest.raises(RefreshInProgressError):
            rollback(index_dir)
    finally:
        slow.release.set()
        worker.join(30)
    assert results[0].status == "refreshed"
    assert refresh(edited(documents), embedder, index_dir).status == "unchanged"


def test_the_lock_names_another_process_and_dies_with_it(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from retrieval.locking import refresh_lock\n"
        "with refresh_lock(Path(sys.argv[1])):\n    print('held', flush=True); sys.stdin.readline()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(RefreshInProgressError, match=f"pid {holder.pid} on "), refresh_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait(30)
    with refresh_lock(tmp_path):  # released by the kernel when its holder died
        pass


def test_settings_level_refresh(tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path / "home", corpus_dir=corpus_dir, cache_dir=tmp_path / "cache")
    fake = HashingEmbedder(name=settings.embedder)
    monkeypatch.setattr(build, "load_embedder", lambda ref, cache_dir: fake)
    (corpus_dir / "broken.txt").write_bytes(b"\xff\xfe")
    result = build.refresh(settings, progress=False)
    assert (result.status, result.added, [s.path for s in result.skipped]) == ("built", 3, ["broken.txt"])
    assert build.refresh(settings, progress=False).status == "unchanged"
    (corpus_dir / "notes.txt").unlink()
    assert build.refresh(settings, progress=False).deleted == 1


def test_the_recall_gate_refuses_a_snapshot_that_loses_gold_sources(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    questions = tmp_path / "gate.jsonl"
    sources = sorted(p.relative_to(corpus_dir).as_posix() for p in corpus_dir.rglob("*") if p.is_file())
    lines = [
        json.dumps({"question": (corpus_dir / s).read_text()[:80], "gold_sources": [s]}) for s in sources
    ]
    questions.write_text("\n".join(lines) + "\n")
    settings = Settings(home=tmp_path / "home", corpus_dir=corpus_dir, cache_dir=tmp_path / "cache")
    settings.index.gate_questions, settings.index.gate_margin = questions, 0.0
    fake = HashingEmbedder(name=settings.embedder)
    monkeypatch.setattr(build, "load_embedder", lambda ref, cache_dir: fake)
    first = build.refresh(settings, progress=False)
    # Deleting a gold document drops recall: the new snapshot is refused and the old one stays current.
    (corpus_dir / sources[0]).unlink()
    with pytest.raises(GateRefusedError, match="recall@5"):
        build.refresh(settings, progress=False)
    assert current_snapshot_dir(settings.index_dir).name == first.snapshot_id
    assert [s.snapshot_id for s in list_snapshots(settings.index_dir)] == [first.snapshot_id]


def test_refresh_validates_its_input(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    with pytest.raises(RetrievalError, match="no documents"):
        refresh([], embedder, tmp_path / "index")
    with pytest.raises(RetrievalError, match="twice"):
        refresh([documents[0], documents[0]], embedder, tmp_path / "index")


def test_another_index_kind_is_built_from_the_stored_vectors(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    index_dir = tmp_path / "index"
    refresh(documents, embedder, index_dir)
    calls = embedder.calls
    result = refresh(documents, embedder, index_dir, index_kind="hnsw", index_params={"m": 8})
    assert (result.status, result.chunks_embedded, result.chunks_reused) == ("refreshed", 0, 5)
    assert embedder.calls == calls
    manifest = Manifest.read(current_snapshot_dir(index_dir))
    assert manifest.dense_index == {"kind": "hnsw", "params": {**HNSW_DEFAULTS, "m": 8}}
    assert DenseIndex.load(current_snapshot_dir(index_dir) / "dense.faiss").kind == "hnsw"
    again = refresh(documents, embedder, index_dir, index_kind="hnsw", index_params={"m": 8})
    assert again.status == "unchanged"
    delete_source(index_dir, "notes.txt")  # keeps the kind it found
    assert Manifest.read(current_snapshot_dir(index_dir)).dense_index["kind"] == "hnsw"


class LazyEmbedder(HashingEmbedder):
    """Counts how often its dimension is asked for: for a real embedder, asking loads the model."""

    asked = 0

    @property  # type: ignore[override]
    def dimension(self) -> int:
        self.asked += 1
        return self._dimension

    @dimension.setter
    def dimension(self, value: int) -> None:
        self._dimension = value


def test_refresh_without_new_chunks_does_not_load_the_model(
    tmp_path: Path, documents: list[Document]
) -> None:
    embedder = LazyEmbedder()
    refresh(documents, embedder, tmp_path / "index")
    embedder.asked, calls = 0, embedder.calls
    assert refresh(documents, embedder, tmp_path / "index").status == "unchanged"
    assert refresh(documents[1:], embedder, tmp_path / "index").deleted == 1
    assert (embedder.asked, embedder.calls - calls) == (0, 0)
    assert refresh(documents, embedder, tmp_path / "index").chunks_embedded == 1


def test_same_embedder_name_with_another_dimension_is_refused(
    tmp_path: Path, documents: list[Document], embedder: HashingEmbedder
) -> None:
    refresh(documents, embedder, tmp_path / "index")
    before = current_snapshot_dir(tmp_path / "index")
    with pytest.raises(EmbedderMismatchError, match="now makes vectors of dimension 32"):
        refresh(edited(documents), HashingEmbedder(dimension=32), tmp_path / "index")
    assert current_snapshot_dir(tmp_path / "index") == before


def test_settings_choose_the_dense_index_kind(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home", corpus_dir=corpus_dir, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(
        build, "load_embedder", lambda ref, cache_dir: HashingEmbedder(name=settings.embedder)
    )
    build.refresh(settings, progress=False)
    assert DenseIndex.load(current_snapshot_dir(settings.index_dir) / "dense.faiss").kind == "flat"
    settings.index.kind, settings.index.params = "hnsw", {"m": 8}
    result = build.refresh(settings, progress=False)
    # Another index kind is a new snapshot that reuses every vector and embeds nothing.
    assert result.chunks_embedded == 0 and result.status == "refreshed"
    assert DenseIndex.load(current_snapshot_dir(settings.index_dir) / "dense.faiss").kind == "hnsw"


def test_the_gate_does_not_compare_across_embedders(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    questions = tmp_path / "gate.jsonl"
    source = sorted(p.relative_to(corpus_dir).as_posix() for p in corpus_dir.rglob("*") if p.is_file())[0]
    questions.write_text(json.dumps({"question": "anything", "gold_sources": [source]}) + "\n")
    settings = Settings(home=tmp_path / "home", corpus_dir=corpus_dir, cache_dir=tmp_path / "cache")
    old = HashingEmbedder(name="old-embedder")
    build.refresh(settings, progress=False, embedder=old)
    settings.index.gate_questions, settings.index.gate_margin = questions, 0.0
    # A new embedder forces a full rebuild; the gate scores it alone instead of failing on the old one.
    result = build.refresh(settings, progress=False, embedder=HashingEmbedder(name=settings.embedder))
    assert result.full_rebuild and current_snapshot_dir(settings.index_dir).name == result.snapshot_id
