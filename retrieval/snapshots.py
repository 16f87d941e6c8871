"""Immutable index snapshots and the `current` pointer.

    index_dir/
        current -> snapshots/20261126T153000Z-3fa2c1     (a relative symlink, replaced atomically)
        snapshots/20261126T153000Z-3fa2c1/
            dense.faiss  chunks.sqlite  manifest.json

A snapshot is built in a hidden temp directory beside the others and renamed into place once complete,
so readers never see half of one; `manifest.json` is written last. Old snapshots are kept: serving
processes may still hold them open, and the `parent` chain records where each one came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.settings import ChunkingSettings
from core.types import Chunk
from retrieval.chunking import chunk_document, chunk_int_id, chunker_config, embedding_text
from retrieval.embedders import Embedder
from retrieval.errors import CorruptSnapshotError, NoSnapshotError, RetrievalError
from retrieval.index import DenseIndex
from retrieval.sources import Document
from retrieval.store import ChunkStore

SNAPSHOTS = "snapshots"
CURRENT = "current"
MANIFEST = "manifest.json"
DENSE_INDEX = "dense.faiss"
CHUNK_STORE = "chunks.sqlite"
EMBED_BATCH = 64


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
    """`source_id → content_hash` of every indexed document."""
    chunk_count: int

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


def build_snapshot(
    documents: Sequence[Document],
    embedder: Embedder,
    chunking: ChunkingSettings,
    index_dir: Path,
    progress: bool = True,
) -> Path:
    """Chunk, embed and index `documents` into a new snapshot, make it current, and return its directory."""
    _check_documents(documents)
    chunks = [chunk for doc in documents for chunk in chunk_document(doc, chunking)]
    vectors = _embed(chunks, embedder, progress)
    snapshots = index_dir / SNAPSHOTS
    snapshots.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(
        snapshot_id="",
        created_at=datetime.now(UTC).isoformat(),
        parent=_current_id(index_dir),
        embedder=embedder.name,
        dimension=embedder.dimension,
        chunking=chunker_config(chunking),
        documents={doc.source_id: doc.content_hash for doc in documents},
        chunk_count=len(chunks),
    )
    staging = Path(tempfile.mkdtemp(dir=snapshots, prefix=".build-"))
    # mkdtemp makes it private (0700); a snapshot must be readable by a server running as another user.
    staging.chmod(0o755)
    try:
        _write_parts(staging, documents, chunks, vectors, manifest.dimension)
        final = _publish(staging, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    set_current(index_dir, final.name)
    return final


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


def snapshot_path(index_dir: Path, snapshot_id: str) -> Path:
    """Where the snapshot `snapshot_id` lives (whether or not it exists)."""
    return index_dir / SNAPSHOTS / snapshot_id


def list_snapshots(index_dir: Path) -> list[Manifest]:
    """The manifests of every complete snapshot, oldest first (builds in progress are not listed)."""
    root = index_dir / SNAPSHOTS
    if not root.is_dir():
        return []
    # Hidden directories are builds in progress, or left behind by a crash.
    dirs = [d for d in root.iterdir() if not d.name.startswith(".") and (d / MANIFEST).is_file()]
    return sorted((Manifest.read(d) for d in dirs), key=lambda m: (m.created_at, m.snapshot_id))


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


def _current_id(index_dir: Path) -> str | None:
    """The id `current` names, without checking that the snapshot is there."""
    link = index_dir / CURRENT
    return Path(os.readlink(link)).name if link.is_symlink() else None


def _check_documents(documents: Sequence[Document]) -> None:
    if not documents:
        raise RetrievalError("no documents to index: is the corpus directory empty?")
    seen: set[str] = set()
    for doc in documents:
        if doc.source_id in seen:
            raise RetrievalError(f"document {doc.source_id!r} appears twice")
        seen.add(doc.source_id)


def _embed(chunks: Sequence[Chunk], embedder: Embedder, progress: bool) -> np.ndarray:
    """All chunk vectors, in batches so that the progress bar moves."""
    parts = [np.zeros((0, embedder.dimension), dtype=np.float32)]
    with tqdm(total=len(chunks), desc="embedding", unit="chunk", disable=not progress) as bar:
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = chunks[start : start + EMBED_BATCH]
            parts.append(np.asarray(embedder.embed([embedding_text(c) for c in batch]), dtype=np.float32))
            bar.update(len(batch))
    return np.concatenate(parts)


def _write_parts(
    staging: Path, documents: Sequence[Document], chunks: Sequence[Chunk], vectors: np.ndarray, dimension: int
) -> None:
    index = DenseIndex(dimension)
    index.add([chunk_int_id(c.chunk_id) for c in chunks], vectors)
    index.save(staging / DENSE_INDEX)
    with ChunkStore.create(staging / CHUNK_STORE) as store:
        store.write(documents, chunks)


def _publish(staging: Path, manifest: Manifest) -> Path:
    """Name the snapshot, write its manifest last and rename it into place."""
    stamp = datetime.fromisoformat(manifest.created_at).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{_content_hash(manifest)}"
    for attempt in range(100):
        # Two builds of the same content within one second would share a name: number the later ones.
        snapshot_id = base if attempt == 0 else f"{base}-{attempt + 1}"
        target = staging.parent / snapshot_id
        if target.exists():
            continue
        Manifest(**{**asdict(manifest), "snapshot_id": snapshot_id}).write(staging)
        try:
            staging.rename(target)
        except OSError:
            if target.exists():  # another build took the name between the check and the rename
                continue
            raise
        return target
    raise RetrievalError(f"could not find a free snapshot name for {base}")


def _content_hash(manifest: Manifest) -> str:
    """Six hex chars over what the snapshot indexes and how: equal contents give equal hashes."""
    fields = ("embedder", "dimension", "chunking", "documents")
    content = {name: getattr(manifest, name) for name in fields}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:6]
