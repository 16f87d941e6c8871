"""The SQLite chunk store: round trip, read-only serving and sharing between threads."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
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
    with ChunkStore.open(tmp_path / "chunks.sqlite") as store:
        found = store.get([chunk_int_id(c.chunk_id) for c in chunks])
        assert found == {chunk_int_id(c.chunk_id): c for c in chunks}
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
