"""Keep the index fresh: incremental refresh, deleting a source, rollback and stats.

A refresh compares the corpus with the current snapshot and embeds only what it has not seen: a chunk id
is a hash of (source, text, chunker config), so a chunk whose id and heading are already in the current
snapshot reuses its stored vector. The result is still a complete, immutable snapshot, written by the same
writer as a full build (`snapshots.write_snapshot`), under the same lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.settings import ChunkingSettings
from core.types import Chunk
from retrieval.chunking import chunk_int_id, chunker_config, embedding_text
from retrieval.embedders import Embedder
from retrieval.errors import EmbedderMismatchError, RetrievalError, UnknownSourceError
from retrieval.pipeline import Phase, chunk_documents, chunk_vectors, no_phase
from retrieval.snapshots import (
    CHUNK_STORE,
    MANIFEST,
    RETENTION,
    VECTORS,
    Manifest,
    SnapshotContents,
    check_documents,
    current_manifest,
    current_snapshot_dir,
    dense_index_spec,
    exclusive,
    list_snapshots,
    load_vectors,
    set_current,
    snapshot_path,
    write_snapshot,
)
from retrieval.sources import Document, Skipped
from retrieval.store import ChunkStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did: document changes against the previous snapshot, and the embedding work."""

    status: Literal["built", "refreshed", "unchanged"]
    """`built`: everything embedded (see `full_rebuild`); `refreshed`: only new chunks embedded;
    `unchanged`: nothing changed, so no snapshot was made."""
    snapshot_id: str
    """The current snapshot afterwards."""
    added: int
    changed: int
    deleted: int
    unchanged: int
    chunks_embedded: int
    chunks_reused: int
    full_rebuild: str | None = None
    """Why nothing could be reused (no snapshot yet, another embedder or chunker), None if incremental."""
    skipped: tuple[Skipped, ...] = ()
    """Corpus files (or JSONL lines) left out because they could not be used."""
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the CLI."""
        line = (
            f"{self.status}: snapshot {self.snapshot_id}; documents +{self.added} ~{self.changed} "
            f"-{self.deleted} ={self.unchanged}; chunks embedded {self.chunks_embedded}, "
            f"reused {self.chunks_reused}; {self.seconds:.1f}s"
        )
        if self.full_rebuild:
            line += f"; full rebuild: {self.full_rebuild}"
        return line + (f"; {len(self.skipped)} skipped" if self.skipped else "")


@dataclass(frozen=True)
class _Diff:
    added: int
    changed: int
    deleted: int
    unchanged: int

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.deleted)


def refresh_index(
    documents: Sequence[Document],
    embedder: Embedder,
    chunking: ChunkingSettings,
    index_dir: Path,
    *,
    progress: bool = True,
    keep: int = RETENTION,
    skipped: Sequence[Skipped] = (),
    index_kind: str = "flat",
    index_params: Mapping[str, Any] | None = None,
    gate: Callable[[Path], None] | None = None,
    on_phase: Phase = no_phase,
) -> RefreshResult:
    """Make `documents` the current snapshot, embedding only the chunks the current one does not have.

    Deleted documents' chunks are dropped; unchanged text keeps its chunk id and vector. Another embedder
    or chunker config, or no snapshot yet, means a full build. If nothing changed no snapshot is made.
    `skipped` (from `sources.scan_documents`) is only passed through to the result. The dense index is
    rebuilt from all vectors each time, as `index_kind` with `index_params` (`DenseIndex.create`): asking
    for another kind makes a new snapshot even when no document changed, but embeds nothing. `keep`
    snapshots are kept. `gate` (e.g. `gate.recall_gate` wrapped by `build.refresh`) may refuse the new
    snapshot before it becomes current by raising `errors.GateRefusedError`. `on_phase` is told where
    the writer is (`pipeline.Phase`).
    Raises `errors.RefreshInProgressError` when another writer holds the index directory.
    """
    start = time.monotonic()
    check_documents(documents)
    config = chunker_config(chunking)
    with exclusive(index_dir):
        current = current_manifest(index_dir)
        diff = _diff(current, documents)
        reason = _full_rebuild_reason(index_dir, current, embedder, config)
        # Only asked of the embedder when nothing can be reused: asking may load the model, which a
        # refresh that finds nothing new, or only deletions, never needs.
        dimension = current.dimension if current is not None and reason is None else embedder.dimension
        spec = dense_index_spec(index_kind, dimension, index_params or {})
        if current is not None and reason is None and not diff.any and current.dense_index == spec:
            return _result("unchanged", current.snapshot_id, diff, 0, 0, None, skipped, start)
        chunks = chunk_documents(documents, chunking)
        reusable = {} if reason else _reusable_vectors(current_snapshot_dir(index_dir), chunks)
        vectors = chunk_vectors(
            chunks, embedder, dimension, reusable=reusable, progress=progress, on_phase=on_phase
        )
        contents = SnapshotContents(
            documents,
            chunks,
            vectors,
            embedder.name,
            dimension,
            config,
            index_kind,
            index_params or {},
        )
        path = write_snapshot(index_dir, contents, keep=keep, on_phase=on_phase, gate=gate)
    embedded = len(chunks) - len(reusable)
    status: Literal["built", "refreshed"] = "built" if reason else "refreshed"
    return _result(status, path.name, diff, embedded, len(reusable), reason, skipped, start)


def _result(
    status: Literal["built", "refreshed", "unchanged"],
    snapshot_id: str,
    diff: _Diff,
    embedded: int,
    reused: int,
    reason: str | None,
    skipped: Sequence[Skipped],
    start: float,
) -> RefreshResult:
    seconds = time.monotonic() - start
    counts = (diff.added, diff.changed, diff.deleted, diff.unchanged)
    result = RefreshResult(status, snapshot_id, *counts, embedded, reused, reason, tuple(skipped), seconds)
    logger.debug("%s", result.summary())
    return result


def _diff(current: Manifest | None, documents: Sequence[Document]) -> _Diff:
    old = current.documents if current else {}
    new = {doc.source_id: doc.content_hash for doc in documents}
    changed = sum(1 for sid, rev in new.items() if sid in old and old[sid] != rev)
    added = sum(1 for sid in new if sid not in old)
    deleted = sum(1 for sid in old if sid not in new)
    return _Diff(added, changed, deleted, len(new) - added - changed)


def _full_rebuild_reason(
    index_dir: Path, current: Manifest | None, embedder: Embedder, config: dict[str, Any]
) -> str | None:
    """Why no vector of the current snapshot can be reused, or None when they all can.

    Embedders are told apart by name (the model reference), not by dimension, which may load the model.
    """
    if current is None:
        return "no current snapshot"
    if current.embedder != embedder.name:
        return (
            f"embedder changed from {current.embedder!r} ({current.dimension}) "
            f"to {embedder.name!r} ({embedder.dimension})"
        )
    if current.chunking != config:
        return f"chunker config changed from {current.chunking} to {config}"
    if not (current_snapshot_dir(index_dir) / VECTORS).is_file():
        return f"snapshot {current.snapshot_id} does not store its vectors (built by an older lorag)"
    return None


def _reusable_vectors(snapshot_dir: Path, chunks: Sequence[Chunk]) -> dict[int, np.ndarray]:
    """The stored vectors of `chunks` the snapshot already has, by int id.

    A chunk id covers the text but not the heading, which is embedded too: a renamed section's chunks
    keep their ids but are embedded again.
    """
    stored = load_vectors(snapshot_dir)
    wanted = {chunk_int_id(c.chunk_id): c for c in chunks}
    with ChunkStore.open(snapshot_dir / CHUNK_STORE) as store:
        old = store.get([int_id for int_id in wanted if int_id in stored])
    return {
        int_id: stored[int_id]
        for int_id, chunk in wanted.items()
        if int_id in old
        and old[int_id].chunk_id == chunk.chunk_id
        and embedding_text(old[int_id]) == embedding_text(chunk)
    }


def delete_source(
    index_dir: Path,
    source_id: str,
    embedder: Embedder | None = None,
    *,
    keep: int = RETENTION,
    on_phase: Phase = no_phase,
) -> str:
    """A new current snapshot without `source_id` (for a JSONL file, also each `<file>#<id>` record in it);
    nothing is embedded. Returns the new snapshot's id.

    `embedder`, if given, must be the snapshot's. The document comes back at the next refresh if it is
    still in the corpus.
    """
    with exclusive(index_dir):
        snapshot_dir = current_snapshot_dir(index_dir)
        manifest = Manifest.read(snapshot_dir)
        if embedder is not None and (embedder.name, embedder.dimension) != (
            manifest.embedder,
            manifest.dimension,
        ):
            raise EmbedderMismatchError(
                f"snapshot {manifest.snapshot_id} was built with embedder {manifest.embedder!r}, "
                f"not {embedder.name!r}"
            )
        doomed = {sid for sid in manifest.documents if sid == source_id or sid.startswith(f"{source_id}#")}
        if not doomed:
            raise UnknownSourceError(f"{source_id!r} is not in snapshot {manifest.snapshot_id}")
        if len(doomed) == len(manifest.documents):
            raise RetrievalError(f"deleting {source_id!r} would leave the index empty")
        vectors = load_vectors(snapshot_dir)
        if not vectors:
            raise RetrievalError(
                f"snapshot {manifest.snapshot_id} does not store its vectors: run `lorag index build` first"
            )
        with ChunkStore.open(snapshot_dir / CHUNK_STORE) as store:
            documents = [doc for doc in store.documents() if doc.source_id not in doomed]
            chunks = [chunk for chunk in store.chunks() if chunk.source_id not in doomed]
        matrix = np.stack([vectors[chunk_int_id(c.chunk_id)] for c in chunks])
        # The same kind of dense index as before: a deletion changes what is indexed, not how.
        dense = manifest.dense_index
        contents = SnapshotContents(
            documents,
            chunks,
            matrix,
            manifest.embedder,
            manifest.dimension,
            manifest.chunking,
            dense["kind"],
            dense["params"],
        )
        path = write_snapshot(index_dir, contents, keep=keep, on_phase=on_phase)
    logger.debug("deleted %s: snapshot %s is current", ", ".join(sorted(doomed)), path.name)
    return path.name


def rollback(index_dir: Path) -> str:
    """Point `current` back at its parent snapshot, atomically; returns the parent's id.

    Raises `RetrievalError` when the current snapshot has no parent, or it is no longer kept.
    """
    with exclusive(index_dir):
        manifest = Manifest.read(current_snapshot_dir(index_dir))
        if manifest.parent is None:
            raise RetrievalError(f"snapshot {manifest.snapshot_id} has no parent to roll back to")
        if not (snapshot_path(index_dir, manifest.parent) / MANIFEST).is_file():
            raise RetrievalError(
                f"cannot roll back to {manifest.parent}, the parent of {manifest.snapshot_id}: "
                "it is no longer kept"
            )
        set_current(index_dir, manifest.parent)
    logger.debug("rolled back from %s to %s", manifest.snapshot_id, manifest.parent)
    return manifest.parent


def stats(index_dir: Path) -> dict[str, Any]:
    """The current snapshot in numbers: id, documents, chunks, bytes on disk, embedder, created, parent."""
    path = current_snapshot_dir(index_dir)
    manifest = Manifest.read(path)
    return {
        "snapshot_id": manifest.snapshot_id,
        "documents": len(manifest.documents),
        "chunks": manifest.chunk_count,
        "size_bytes": sum(p.stat().st_size for p in path.rglob("*") if p.is_file()),
        "embedder": manifest.embedder,
        "dimension": manifest.dimension,
        "created_at": manifest.created_at,
        "parent": manifest.parent,
        "bm25": manifest.bm25,
        "snapshots": len(list_snapshots(index_dir)),
    }
