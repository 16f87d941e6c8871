"""The chunk store: chunk texts and document revisions in one SQLite file beside the vector index.

Built once per snapshot and then only read: serving opens it read-only, shared by the request threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from core.types import Chunk
from retrieval.chunking import chunk_int_id

_SCHEMA = """
CREATE TABLE documents (
    source_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    modified REAL NOT NULL,
    title TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE chunks (
    int_id INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    source_id TEXT NOT NULL REFERENCES documents (source_id),
    position INTEGER NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX chunks_by_source ON chunks (source_id, position);
"""
# Each chunk comes back with its document's metadata (e.g. tags, for filters) and revision, so that a
# citation can name the exact version. Stores from before documents had metadata lack the column.
_CHUNK_QUERY = """
SELECT c.int_id, c.chunk_id, c.source_id, c.text, c.position, c.title, c.metadata, d.content_hash, {}
FROM chunks AS c JOIN documents AS d USING (source_id)
"""
# SQLite's default limit on bound parameters is 999 in old builds; stay below it per query.
_BATCH = 500


class DocumentRecord(Protocol):
    """What the store keeps of a document: a `sources.Document` or a `DocumentRow` read back."""

    @property
    def source_id(self) -> str: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def modified(self) -> float: ...
    @property
    def title(self) -> str: ...
    @property
    def metadata(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class DocumentRow:
    """A document as stored: everything but its text, which lives on in its chunks."""

    source_id: str
    content_hash: str
    modified: float
    title: str
    metadata: dict[str, Any] = field(default_factory=dict)


class ChunkStore:
    """Chunks by int id, and the documents they came from. Safe to share between threads."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        """Wrap an open connection; use `create` or `open` instead."""
        self._connection = connection
        # One connection shared by threads (check_same_thread=False): the lock keeps each call whole.
        self._lock = threading.Lock()
        columns = {row[1] for row in self._fetch("PRAGMA table_info(documents)")}
        self._document_metadata = "d.metadata" if "metadata" in columns else "'{}'"
        self._chunk_query = _CHUNK_QUERY.format(self._document_metadata)

    @classmethod
    def create(cls, path: Path) -> ChunkStore:
        """A new, empty store at `path`, which must not exist yet."""
        if path.exists():
            raise FileExistsError(f"chunk store {path} already exists")
        connection = sqlite3.connect(path, check_same_thread=False)
        connection.executescript(_SCHEMA)
        return cls(connection)

    @classmethod
    def open(cls, path: Path, *, read_only: bool = True) -> ChunkStore:
        """An existing store; read-only by default, as snapshots are immutable once built."""
        if not path.is_file():
            raise FileNotFoundError(f"chunk store {path} does not exist")
        uri = path.resolve().as_uri() + ("?mode=ro" if read_only else "?mode=rw")
        return cls(sqlite3.connect(uri, uri=True, check_same_thread=False))

    def write(self, documents: Iterable[DocumentRecord], chunks: Iterable[Chunk]) -> None:
        """Insert documents and their chunks in one transaction."""
        document_rows = [
            (d.source_id, d.content_hash, d.modified, d.title, _json(d.metadata)) for d in documents
        ]
        chunk_rows = [
            (
                chunk_int_id(c.chunk_id),
                c.chunk_id,
                c.source_id,
                c.position,
                c.title,
                c.text,
                _json(c.metadata),
            )
            for c in chunks
        ]
        with self._lock, self._connection:
            self._connection.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?)", document_rows)
            self._connection.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", chunk_rows)

    def get(self, int_ids: Sequence[int]) -> dict[int, Chunk]:
        """The chunks stored under `int_ids`; ids that are not in the store are left out."""
        found: dict[int, Chunk] = {}
        unique = list(dict.fromkeys(int(i) for i in int_ids))
        for start in range(0, len(unique), _BATCH):
            batch = unique[start : start + _BATCH]
            marks = ", ".join("?" * len(batch))
            for row in self._fetch(f"{self._chunk_query} WHERE c.int_id IN ({marks})", batch):
                found[row[0]] = _chunk(row)
        return found

    def chunks(self) -> list[Chunk]:
        """Every chunk, by source id and position."""
        return [_chunk(row) for row in self._fetch(f"{self._chunk_query} ORDER BY c.source_id, c.position")]

    def documents(self) -> list[DocumentRow]:
        """Every document, by source id."""
        columns = f"d.source_id, d.content_hash, d.modified, d.title, {self._document_metadata}"
        query = f"SELECT {columns} FROM documents AS d ORDER BY d.source_id"
        return [
            DocumentRow(source_id, content_hash, modified, title, json.loads(metadata))
            for source_id, content_hash, modified, title, metadata in self._fetch(query)
        ]

    def revisions(self) -> dict[str, str]:
        """`source_id → content_hash` of every stored document."""
        return dict(self._fetch("SELECT source_id, content_hash FROM documents ORDER BY source_id"))

    def chunk_count(self) -> int:
        return int(self._fetch("SELECT count(*) FROM chunks")[0][0])

    def document_count(self) -> int:
        return int(self._fetch("SELECT count(*) FROM documents")[0][0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> ChunkStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _fetch(self, query: str, parameters: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            return self._connection.execute(query, parameters).fetchall()


def _chunk(row: Sequence[Any]) -> Chunk:
    metadata = {**json.loads(row[8]), **json.loads(row[6]), "content_hash": row[7]}
    return Chunk(row[1], row[2], row[3], row[4], row[5], metadata)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
