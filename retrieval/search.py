"""Dense search over one snapshot: embed the query, find the nearest chunks, fetch their text."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from core.types import Hit
from retrieval.embedders import Embedder
from retrieval.errors import CorruptSnapshotError, EmbedderMismatchError
from retrieval.index import DenseIndex
from retrieval.snapshots import CHUNK_STORE, DENSE_INDEX, Manifest, current_snapshot_dir
from retrieval.store import ChunkStore


class Snapshot:
    """An opened snapshot: its manifest, vector index and chunk store (read-only, shareable by threads)."""

    def __init__(self, path: Path, manifest: Manifest, index: DenseIndex, store: ChunkStore) -> None:
        """Use `Snapshot.open`; this only checks that the parts agree with each other."""
        if index.dimension != manifest.dimension or len(index) != manifest.chunk_count:
            raise CorruptSnapshotError(
                f"{path}: index has {len(index)} vectors of dimension {index.dimension}, manifest says "
                f"{manifest.chunk_count} of dimension {manifest.dimension}"
            )
        self.path = path
        self.manifest = manifest
        self.index = index
        self.store = store

    @classmethod
    def open(cls, path: Path) -> Snapshot:
        """Open the complete snapshot in `path`; a `current` link is resolved, as it may move later."""
        path = path.resolve()
        manifest = Manifest.read(path)
        index = DenseIndex.load(path / DENSE_INDEX)
        store = ChunkStore.open(path / CHUNK_STORE)
        try:
            return cls(path, manifest, index, store)
        except BaseException:
            store.close()
            raise

    @property
    def snapshot_id(self) -> str:
        return self.manifest.snapshot_id

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Retriever:
    """Answers queries from one snapshot with the embedder it was built with."""

    def __init__(self, snapshot: Snapshot, embedder: Embedder) -> None:
        """Refuses an embedder other than the snapshot's: its vectors would live in another space."""
        check_embedder(snapshot.manifest, embedder)
        self.snapshot = snapshot
        self.embedder = embedder

    @property
    def snapshot_id(self) -> str:
        return self.snapshot.snapshot_id

    def search(self, query: str, k: int) -> list[Hit]:
        """The `k` chunks most similar to `query`, best first; `Hit.score` is the cosine similarity.

        A blank query or `k <= 0` finds nothing (and embeds nothing).
        """
        if k <= 0 or not query.strip():
            return []
        vector = self.embedder.embed([query])[0]
        ranked = self.snapshot.index.search(vector, k)
        chunks = self.snapshot.store.get([int_id for int_id, _ in ranked])
        missing = [int_id for int_id, _ in ranked if int_id not in chunks]
        if missing:
            raise CorruptSnapshotError(f"{self.snapshot.path}: vectors without chunks: {missing}")
        return [Hit(chunks[int_id], score) for int_id, score in ranked]

    def close(self) -> None:
        self.snapshot.close()


def check_embedder(manifest: Manifest, embedder: Embedder) -> None:
    """Raise `EmbedderMismatchError` unless `embedder` is the one the snapshot was built with."""
    # The name first: comparing dimensions may load the model.
    if embedder.name != manifest.embedder or embedder.dimension != manifest.dimension:
        raise EmbedderMismatchError(
            f"snapshot {manifest.snapshot_id} was built with embedder {manifest.embedder!r} "
            f"(dimension {manifest.dimension}), not {embedder.name!r}: "
            "use that embedder, or rebuild the index with `lorag index build`"
        )


def open_retriever(index_dir: Path, embedder: Embedder) -> Retriever:
    """A retriever over the current snapshot of `index_dir`."""
    snapshot = Snapshot.open(current_snapshot_dir(index_dir))
    try:
        return Retriever(snapshot, embedder)
    except BaseException:
        snapshot.close()
        raise
