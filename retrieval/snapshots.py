"""Immutable index snapshots, the one writer that makes them, and the `current` pointer.

    index_dir/
        .refresh.lock                                    (held by the one writer at a time)
        current -> snapshots/20261126T153000Z-3fa2c1     (a relative symlink, replaced atomically)
        snapshots/20261126T153000Z-3fa2c1/
            dense.faiss  chunks.sqlite  vectors.npz  bm25/  manifest.json

A snapshot is written in a hidden staging directory beside the others and renamed into place once
complete, so readers never see half of one; `manifest.json` is written last. Every writer (build, refresh,
delete, rollback) holds the index directory's lock, and first removes what a crashed writer left behind:
anything hidden under `snapshots/` and temporary `current` links. Old snapshots are kept up to a retention
limit (serving processes may still hold them open), and the `parent` chain records where each came from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import ChunkingSettings
from core.types import Chunk
from retrieval.chunking import chunk_int_id, chunker_config, embedding_text
from retrieval.embedders import Embedder
from retrieval.errors import CorruptSnapshotError, EmptyCorpusError, NoSnapshotError, RetrievalError
from retrieval.index import DenseIndex
from retrieval.locking import refresh_lock
from retrieval.pipeline import Phase, chunk_documents, chunk_vectors, no_phase
from retrieval.sources import Document
from retrieval.store import ChunkStore, DocumentRecord

logger = logging.getLogger(__name__)

SNAPSHOTS = "snapshots"
CURRENT = "current"
MANIFEST = "manifest.json"
DENSE_INDEX = "dense.faiss"
CHUNK_STORE = "chunks.sqlite"
VECTORS = "vectors.npz"
"""Every chunk's vector by int id: what a refresh reuses, whatever kind of index `dense.faiss` is."""
BM25 = "bm25"
RETENTION = 5
"""Snapshots kept by default; the current one and its parent are never removed."""


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds and how it was made; `manifest.json` in the snapshot directory."""

    snapshot_id: str
    created_at: str
    """UTC, ISO 8601 with microseconds: orders snapshots made within one second."""
    parent: str | None
    """The snapshot that was current when this one was built."""
    embedder: str
    dimension: int
    chunking: dict[str, Any]
    """`chunking.chunker_config(...)`: the settings and the chunker version."""
    documents: dict[str, str]
    """`source_id → content_hash` (the revision) of every indexed document."""
    chunk_count: int
    modified: dict[str, float] = field(default_factory=dict)
    """`source_id → modified` (epoch seconds) of every indexed document."""
    bm25: bool = False
    """Whether the snapshot holds a BM25 index in `bm25/` (snapshots from before BM25 do not)."""
    dense_index: dict[str, Any] = field(default_factory=lambda: {"kind": "flat", "params": {}})
    """`dense_index_spec(...)` of `dense.faiss`: its kind and parameters, defaults filled in."""

    def write(self, snapshot_dir: Path) -> None:
        (snapshot_dir / MANIFEST).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, snapshot_dir: Path) -> Manifest:
        path = snapshot_dir / MANIFEST
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError as exc:
            raise CorruptSnapshotError(f"{snapshot_dir} is not a complete snapshot: no {MANIFEST}") from exc
        except (ValueError, TypeError) as exc:
            raise CorruptSnapshotError(f"{path} is not a valid manifest: {exc}") from exc


@dataclass(frozen=True)
class SnapshotInfo:
    """A complete snapshot as `list_snapshots` shows it."""

    manifest: Manifest
    current: bool

    @property
    def snapshot_id(self) -> str:
        return self.manifest.snapshot_id


@dataclass(frozen=True)
class SnapshotContents:
    """Everything a new snapshot holds: what `write_snapshot` writes."""

    documents: Sequence[DocumentRecord]
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    """One row per chunk, in the same order."""
    embedder: str
    dimension: int
    chunking: dict[str, Any]
    """`chunking.chunker_config(...)`."""
    index_kind: str = "flat"
    """The kind of `dense.faiss` (`index.KINDS`), built from `vectors` every time."""
    index_params: Mapping[str, Any] = field(default_factory=dict)
    """Parameters of that kind (`index.HNSW_DEFAULTS`, `index.IVF_DEFAULTS`)."""


def build_snapshot(
    documents: Sequence[Document],
    embedder: Embedder,
    chunking: ChunkingSettings,
    index_dir: Path,
    progress: bool = True,
    *,
    keep: int = RETENTION,
    index_kind: str = "flat",
    index_params: Mapping[str, Any] | None = None,
    on_phase: Phase = no_phase,
) -> Path:
    """Chunk and embed every document into a new snapshot, make it current and return its directory.

    A full build: nothing is reused from earlier snapshots (`refresh.refresh_index` is the incremental one).
    `keep` snapshots are kept; `index_kind` and `index_params` choose the dense index (`DenseIndex.create`).
    Raises `errors.RefreshInProgressError` when another writer holds the index directory.
    """
    check_documents(documents)
    with exclusive(index_dir):
        chunks = chunk_documents(documents, chunking)
        contents = SnapshotContents(
            documents,
            chunks,
            chunk_vectors(chunks, embedder, embedder.dimension, progress=progress, on_phase=on_phase),
            embedder.name,
            embedder.dimension,
            chunker_config(chunking),
            index_kind,
            index_params or {},
        )
        return write_snapshot(index_dir, contents, keep=keep, on_phase=on_phase)


def check_documents(documents: Sequence[DocumentRecord]) -> None:
    """Refuse an empty corpus (more likely a wrong path than a wish to index nothing) and duplicate ids."""
    if not documents:
        raise EmptyCorpusError("no documents to index: is the corpus directory empty?")
    seen: set[str] = set()
    for doc in documents:
        if doc.source_id in seen:
            raise RetrievalError(f"document {doc.source_id!r} appears twice")
        seen.add(doc.source_id)


@contextmanager
def exclusive(index_dir: Path) -> Iterator[None]:
    """Hold the writer lock of `index_dir` and clear what a crashed writer left; every writer runs in one.

    Raises `errors.RefreshInProgressError` when another writer holds it.
    """
    with refresh_lock(index_dir):
        remove_stale(index_dir)
        yield


def remove_stale(index_dir: Path) -> None:
    """Delete staging and half-deleted directories and temporary `current` links. Only under the lock:
    then no writer is running, so each of them was left by one that crashed."""
    snapshots = index_dir / SNAPSHOTS
    stale = [p for p in snapshots.iterdir() if p.name.startswith(".")] if snapshots.is_dir() else []
    stale += list(index_dir.glob(f".{CURRENT}-*"))
    for path in stale:
        logger.info("removing %s, left by an interrupted writer", path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def write_snapshot(
    index_dir: Path,
    contents: SnapshotContents,
    *,
    keep: int = RETENTION,
    on_phase: Phase = no_phase,
    gate: Callable[[Path], None] | None = None,
) -> Path:
    """Write `contents` as a new snapshot, make it current, apply retention and return its directory.

    The one snapshot writer: call it inside `exclusive(index_dir)`. `on_phase` is told `write` (parts
    written, not yet published), `switch` (published, `current` not yet moved) and `switched`. `gate`
    sees the published snapshot before `current` moves; if it raises, the snapshot is removed and
    `current` stays where it was.
    """
    if len(contents.vectors) != len(contents.chunks):
        raise ValueError(f"{len(contents.vectors)} vectors for {len(contents.chunks)} chunks")
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    snapshots = index_dir / SNAPSHOTS
    snapshots.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(
        snapshot_id="",
        created_at=datetime.now(UTC).isoformat(),
        parent=_current_id(index_dir),
        embedder=contents.embedder,
        dimension=contents.dimension,
        chunking=contents.chunking,
        documents={doc.source_id: doc.content_hash for doc in contents.documents},
        chunk_count=len(contents.chunks),
        modified={doc.source_id: doc.modified for doc in contents.documents},
        bm25=True,
        dense_index=dense_index_spec(contents.index_kind, contents.dimension, contents.index_params),
    )
    staging = Path(tempfile.mkdtemp(dir=snapshots, prefix=".build-"))
    # mkdtemp makes it private (0700); a snapshot must be readable by a server running as another user.
    staging.chmod(0o755)
    try:
        _write_parts(staging, contents)
        on_phase("write")
        final = _publish(staging, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if gate is not None:
        try:
            gate(final)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
    on_phase("switch")
    set_current(index_dir, final.name)
    on_phase("switched")
    prune(index_dir, keep)
    return final


def _write_parts(staging: Path, contents: SnapshotContents) -> None:
    ids = np.array([chunk_int_id(c.chunk_id) for c in contents.chunks], dtype=np.int64)
    index = DenseIndex.create(contents.index_kind, contents.dimension, **contents.index_params)
    index.add(ids, contents.vectors)
    index.save(staging / DENSE_INDEX)
    with open(staging / VECTORS, "wb") as file:
        np.savez(file, ids=ids, vectors=np.asarray(contents.vectors, dtype=np.float32))
    with ChunkStore.create(staging / CHUNK_STORE) as store:
        store.write(contents.documents, contents.chunks)
    from retrieval.bm25 import BM25Index

    texts = [embedding_text(c) for c in contents.chunks]
    BM25Index.build([int(i) for i in ids], texts).save(staging / BM25)


def dense_index_spec(kind: str, dimension: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """`{"kind", "params"}` of the index `DenseIndex.create(kind, dimension, **params)` makes: how a
    manifest records it, so that a refresh can tell whether the index must be built another way."""
    index = DenseIndex.create(kind, dimension, **params)
    return {"kind": index.kind, "params": index.params}


def load_vectors(snapshot_dir: Path) -> dict[int, np.ndarray]:
    """The stored vector of every chunk of a snapshot, by int id; empty for snapshots from before
    vectors were stored."""
    path = snapshot_dir / VECTORS
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        ids, vectors = data["ids"], data["vectors"]
    return {int(i): row for i, row in zip(ids, vectors, strict=True)}


def _publish(staging: Path, manifest: Manifest) -> Path:
    """Name the snapshot, write its manifest last, flush it to disk and rename it into place."""
    stamp = datetime.fromisoformat(manifest.created_at).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{_content_hash(manifest)}"
    for attempt in range(100):
        # Two builds of the same content within one second would share a name: number the later ones.
        snapshot_id = base if attempt == 0 else f"{base}-{attempt + 1}"
        target = staging.parent / snapshot_id
        if target.exists():
            continue
        Manifest(**{**asdict(manifest), "snapshot_id": snapshot_id}).write(staging)
        # Flushed before it is renamed: after a power cut, a published snapshot is a complete one.
        _fsync_tree(staging)
        try:
            staging.rename(target)
        except OSError:
            if target.exists():  # another build took the name between the check and the rename
                continue
            raise
        _fsync(staging.parent)
        return target
    raise RetrievalError(f"could not find a free snapshot name for {base}")


def _content_hash(manifest: Manifest) -> str:
    """Six hex chars over what the snapshot indexes and how: equal contents give equal hashes."""
    fields = ("embedder", "dimension", "chunking", "documents")
    content = {name: getattr(manifest, name) for name in fields}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:6]


def _fsync_tree(root: Path) -> None:
    for path in [*root.rglob("*"), root]:
        _fsync(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- the current pointer --------------------------------------------------------------------------------


def current_snapshot_dir(index_dir: Path) -> Path:
    """The directory of the current snapshot; `NoSnapshotError` when nothing was built yet."""
    snapshot_id = _current_id(index_dir)
    if snapshot_id is None:
        raise NoSnapshotError(f"no index snapshot in {index_dir}: run `lorag index build` first")
    path = snapshot_path(index_dir, snapshot_id)
    if not (path / MANIFEST).is_file():
        raise CorruptSnapshotError(
            f"{index_dir / CURRENT} points at {path}, which is not a complete snapshot"
        )
    return path


def current_manifest(index_dir: Path) -> Manifest | None:
    """The current snapshot's manifest, or None when nothing was built yet."""
    try:
        return Manifest.read(current_snapshot_dir(index_dir))
    except NoSnapshotError:
        return None


def snapshot_path(index_dir: Path, snapshot_id: str) -> Path:
    """Where the snapshot `snapshot_id` lives (whether or not it exists)."""
    return index_dir / SNAPSHOTS / snapshot_id


def set_current(index_dir: Path, snapshot_id: str) -> None:
    """Point `current` at a complete snapshot atomically: readers see the old target or the new one."""
    Manifest.read(snapshot_path(index_dir, snapshot_id))
    temp = index_dir / f".{CURRENT}-{os.getpid()}-{os.urandom(4).hex()}"
    # Relative target: the index directory can be moved or mounted elsewhere (e.g. in a container).
    os.symlink(Path(SNAPSHOTS) / snapshot_id, temp)
    try:
        os.replace(temp, index_dir / CURRENT)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync(index_dir)


def _current_id(index_dir: Path) -> str | None:
    """The id `current` names, without checking that the snapshot is there."""
    link = index_dir / CURRENT
    return Path(os.readlink(link)).name if link.is_symlink() else None


# ---- listing and retention ---------------------------------------------------------------------------------


def list_snapshots(index_dir: Path) -> list[SnapshotInfo]:
    """Every complete snapshot, oldest first, the current one marked (builds in progress are not listed)."""
    root = index_dir / SNAPSHOTS
    if not root.is_dir():
        return []
    # Hidden directories are builds in progress, or left behind by a crash.
    dirs = [d for d in root.iterdir() if not d.name.startswith(".") and (d / MANIFEST).is_file()]
    manifests = sorted((Manifest.read(d) for d in dirs), key=lambda m: (m.created_at, m.snapshot_id))
    current = _current_id(index_dir)
    return [SnapshotInfo(m, m.snapshot_id == current) for m in manifests]


def prune(index_dir: Path, keep: int = RETENTION) -> list[str]:
    """Delete the oldest snapshots beyond `keep`, never the current one or its parent; returns their ids.

    Call it inside `exclusive(index_dir)`. A snapshot is first renamed to a hidden name, so one whose
    deletion is interrupted is never listed as complete, and the next writer finishes the job.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    snapshots = list_snapshots(index_dir)
    current = next((s.manifest for s in snapshots if s.current), None)
    protected = {current.snapshot_id, current.parent} if current else set()
    removable = [s.snapshot_id for s in snapshots if s.snapshot_id not in protected]
    doomed = removable[: max(0, len(snapshots) - keep)]
    for snapshot_id in doomed:
        path = snapshot_path(index_dir, snapshot_id)
        trash = path.with_name(f".trash-{snapshot_id}")
        path.rename(trash)
        shutil.rmtree(trash)
        logger.info("removed snapshot %s (keeping %d)", snapshot_id, keep)
    return doomed
