"""The SQLite chunk store: round trip, read-only serving and sharing between threads."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from core.settings import ChunkingSettings
from core.types import Chunk
from retrieval.chunking import chunk_document, chunk_int_id
from retrieval.sources import Document
from retrieval.store import ChunkStore


def written(path: Path, documents: list[Document]) -> list[Chunk]:
    chunks = [c for doc in documents for c in chunk_document(doc, ChunkingSettings())]
    with ChunkStore.create(path) as store:
        store.write(documents, chunks)
    return chunks


def test_round_trip(tmp_path: Path, documents: list[Document]) -> None:
    chunks = written(tmp_path / "chunks.sqlite", documents)
    # A chunk comes back with its document's metadata (e.g. tags for filters) under its own.
    metadata = {d.source_id: d.metadata for d in documents}
    expected = {
        chunk_int_id(c.chunk_id): replace(c, metadata={**metadata[c.source_id], **c.metadata}) for c in chunks
    }
    with ChunkStore.open(tmp_path / "chunks.sqlite") as store:
        found = store.get([chunk_int_id(c.chunk_id) for c in chunks])
        assert found == expected
        assert store.chunks() == sorted(expected.values(), key=lambda c: (c.source_id, c.position))
        assert [(d.source_id, d.content_hash, d.metadata) for d in store.documents()] == [
            (d.source_id, d.content_hash, d.metadata) for d in documents
        ]
        assert store.chunk_count() == len(chunks)
        assert store.document_count() == len(documents)
        assert store.revisions() == {d.source_id: d.content_hash for d in documents}


def test_unknown_ids_are_left_out(tmp_path: Path, documents: list[Document]) -> None:
    chunks = written(tmp_path / "chunks.sqlite", documents)
    wanted = chunk_int_id(chunks[0].chunk_id)
    with ChunkStore.open(tmp_path / "chunks.sqlite") as store:
        assert list(store.get([wanted, 12345, wanted])) == [wanted]
        assert store.get([]) == {}


def test_serving_copy_is_read_only(tmp_path: Path, documents: list[Document]) -> None:
    written(tmp_path / "chunks.sqlite", documents)
    with ChunkStore.open(tmp_path / "chunks.sqlite") as store, pytest.raises(sqlite3.OperationalError):
        store.write(documents, [])


def test_create_refuses_an_existing_file(tmp_path: Path, documents: list[Document]) -> None:
    written(tmp_path / "chunks.sqlite", documents)
    with pytest.raises(FileExistsError):
        ChunkStore.create(tmp_path / "chunks.sqlite")


def test_open_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ChunkStore.open(tmp_path / "missing.sqlite")


def test_shared_between_threads(tmp_path: Path, documents: list[Document]) -> None:
    chunks = written(tmp_path / "chunks.sqlite", documents)
    ids = [chunk_int_id(c.chunk_id) for c in chunks]
    with ChunkStore.open(tmp_path / "chunks.sqlite") as store, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.get(ids), range(64)))
    assert all(len(result) == len(chunks) for result in results)


def test_chunks_carry_their_document_revision_and_metadata(tmp_path: Path) -> None:
    doc = Document.from_text("faq.jsonl#7", "Tents ship in two days.", metadata={"tags": ["shipping"]})
    [chunk] = written(tmp_path / "chunks.sqlite", [doc])
    with ChunkStore.open(tmp_path / "chunks.sqlite") as store:
        [found] = store.get([chunk_int_id(chunk.chunk_id)]).values()
    assert found.metadata == {"tags": ["shipping"], "content_hash": doc.content_hash}


def test_store_from_before_document_metadata_still_reads(tmp_path: Path, documents: list[Document]) -> None:
    chunks = written(tmp_path / "chunks.sqlite", documents)
    with sqlite3.connect(tmp_path / "chunks.sqlite") as connection:
        connection.execute("ALTER TABLE documents DROP COLUMN metadata")
    with ChunkStore.open(tmp_path / "chunks.sqlite") as store:
        found = store.get([chunk_int_id(chunks[0].chunk_id)])
        assert found[chunk_int_id(chunks[0].chunk_id)].metadata == chunks[0].metadata
        assert all(d.metadata == {} for d in store.documents())
