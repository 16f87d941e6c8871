"""Search over one snapshot: dense (embed the query, nearest vectors), BM25, or both fused by RRF.

Every mode returns `Hit`s best first; `Hit.scores` keeps each signal that ranked the hit (`dense` cosine,
`bm25` raw score, `rrf` fused score, `recency` weight), `Hit.score` is the one the mode ranks by.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, get_args

import numpy as np

from core.types import Chunk, Hit
from retrieval.bm25 import BM25Index
from retrieval.chunking import chunk_int_id
from retrieval.embedders import Embedder
from retrieval.errors import CorruptSnapshotError, EmbedderMismatchError, RetrievalError
from retrieval.hybrid import ChunkFilter, age_days, all_of, recency_weight, reciprocal_rank_fusion
from retrieval.index import DenseIndex
from retrieval.snapshots import BM25, CHUNK_STORE, DENSE_INDEX, Manifest, current_snapshot_dir
from retrieval.store import ChunkStore

SearchMode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[str, ...] = get_args(SearchMode)
OVERFETCH = 4
"""Candidates fetched per result wanted, from each ranker, before fusion, filters and recency reorder them."""
MIN_CANDIDATES = 40
"""At least this many per ranker: with k=1, four candidates each would let RRF miss a chunk that both
rankers place fifth, which outscores one that only a single ranker places first."""

Filters = ChunkFilter | Sequence[ChunkFilter] | None
"""A chunk predicate, or several that must all hold (see `retrieval.hybrid` for ready-made ones)."""


class Snapshot:
    """An opened snapshot: its manifest, vector index, chunk store and, when built, its BM25 index
    (read-only, shareable by threads)."""

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        index: DenseIndex,
        store: ChunkStore,
        bm25: BM25Index | None = None,
    ) -> None:
        """Use `Snapshot.open`; this only checks that the parts agree with each other."""
        if index.dimension != manifest.dimension or len(index) != manifest.chunk_count:
            raise CorruptSnapshotError(
                f"{path}: index has {len(index)} vectors of dimension {index.dimension}, manifest says "
                f"{manifest.chunk_count} of dimension {manifest.dimension}"
            )
        if bm25 is not None and len(bm25) != manifest.chunk_count:
            raise CorruptSnapshotError(
                f"{path}: BM25 index has {len(bm25)} chunks, manifest says {manifest.chunk_count}"
            )
        self.path = path
        self.manifest = manifest
        self.index = index
        self.store = store
        self.bm25 = bm25

    @classmethod
    def open(cls, path: Path) -> Snapshot:
        """Open the complete snapshot in `path`; a `current` link is resolved, as it may move later."""
        path = path.resolve()
        manifest = Manifest.read(path)
        index = DenseIndex.load(path / DENSE_INDEX)
        bm25 = _open_bm25(path, manifest)
        store = ChunkStore.open(path / CHUNK_STORE)
        try:
            return cls(path, manifest, index, store, bm25)
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


@dataclass
class _Candidate:
    int_id: int
    score: float
    scores: dict[str, float] = field(default_factory=dict)


class Retriever:
    """Answers queries from one snapshot with the embedder it was built with."""

    def __init__(
        self, snapshot: Snapshot, embedder: Embedder, clock: Callable[[], float] = time.time
    ) -> None:
        """Refuses an embedder other than the snapshot's: its vectors would live in another space.

        `clock` gives "now" (POSIX seconds) for recency weighting.
        """
        check_embedder(snapshot.manifest, embedder)
        self.snapshot = snapshot
        self.embedder = embedder
        self.clock = clock

    @property
    def snapshot_id(self) -> str:
        return self.snapshot.snapshot_id

    @property
    def modes(self) -> tuple[str, ...]:
        """The search modes this snapshot supports (BM25 needs a snapshot built with a BM25 index)."""
        return MODES if self.snapshot.bm25 is not None else ("dense",)

    def search(
        self,
        query: str,
        k: int,
        mode: SearchMode = "dense",
        filters: Filters = None,
        recency_half_life_days: float | None = None,
    ) -> list[Hit]:
        """The `k` best chunks for `query`, best first. A blank query or `k <= 0` finds nothing.

        `Hit.score` is the cosine similarity (`dense`), the raw BM25 score (`bm25`) or the RRF score
        (`hybrid`), times the recency weight `0.5 ** (age / half_life)` of the chunk's document when
        `recency_half_life_days` is given. `filters` drop chunks before the `k` are chosen; when they drop
        many, more candidates are fetched until `k` pass or the index is exhausted.
        """
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}: choose one of {', '.join(MODES)}")
        if k <= 0 or not query.strip():
            return []
        if mode not in self.modes:
            raise RetrievalError(
                f"snapshot {self.snapshot_id} has no BM25 index for {mode!r} search: "
                "rebuild it with `lorag index build`"
            )
        keep = _as_filter(filters)
        vector = self.embedder.embed([query])[0] if mode != "bm25" else None
        narrows = keep is not None or recency_half_life_days is not None
        fetch = max(k * OVERFETCH, MIN_CANDIDATES) if narrows or mode == "hybrid" else k
        while True:
            ranked = self._rank(query, vector, mode, fetch)
            # Unless a filter or recency may pass over some, only the first k can be returned.
            hits = self._hits(ranked if narrows else ranked[:k], keep)
            if keep is None or len(hits) >= k or fetch >= len(self.snapshot.index):
                break
            fetch *= OVERFETCH
        if recency_half_life_days is not None:
            hits = self._weigh_by_recency(hits, recency_half_life_days)
        hits = hits[:k]
        return self._with_dense_scores(hits, vector) if mode == "hybrid" else hits

    def close(self) -> None:
        self.snapshot.close()

    def _rank(self, query: str, vector: np.ndarray | None, mode: str, n: int) -> list[_Candidate]:
        """Up to `n` candidates per ranker (fused: possibly more), best first."""
        dense = self.snapshot.index.search(vector, n) if vector is not None else []
        lexical = self.snapshot.bm25.search(query, n) if mode != "dense" else []  # type: ignore[union-attr]
        if mode == "dense":
            return [_Candidate(i, s, {"dense": s}) for i, s in dense]
        if mode == "bm25":
            return [_Candidate(i, s, {"bm25": s}) for i, s in lexical]
        dense_scores, bm25_scores = dict(dense), dict(lexical)
        fused = reciprocal_rank_fusion([list(dense_scores), list(bm25_scores)])
        return [_Candidate(i, s, _signals(i, s, dense_scores, bm25_scores)) for i, s in fused]

    def _hits(self, ranked: list[_Candidate], keep: ChunkFilter | None) -> list[Hit]:
        """The candidates' chunks, in order, without those `keep` rejects."""
        chunks = self.snapshot.store.get([c.int_id for c in ranked])
        missing = [c.int_id for c in ranked if c.int_id not in chunks]
        if missing:
            raise CorruptSnapshotError(f"{self.snapshot.path}: indexed ids without chunks: {missing}")
        hits = [Hit(chunks[c.int_id], c.score, c.scores) for c in ranked]
        return [hit for hit in hits if keep is None or keep(hit.chunk)]

    def _weigh_by_recency(self, hits: list[Hit], half_life_days: float) -> list[Hit]:
        """Scores times the recency weight of each hit's document, re-sorted (stable).

        The age is that of the document's `modified` time in the manifest; a document without one (in a
        snapshot from before manifests recorded it) counts as new.
        """
        modified = self.snapshot.manifest.modified
        now = self.clock()
        weighted = []
        for hit in hits:
            age = age_days(modified.get(hit.chunk.source_id, now), now)
            weight = recency_weight(age, half_life_days)
            weighted.append(Hit(hit.chunk, hit.score * weight, {**hit.scores, "recency": weight}))
        return sorted(weighted, key=lambda hit: -hit.score)

    def _with_dense_scores(self, hits: list[Hit], vector: np.ndarray | None) -> list[Hit]:
        """Fill in the cosine of hybrid hits that only BM25 found, from their stored vectors."""
        unscored = [hit for hit in hits if "dense" not in hit.scores]
        if not unscored or vector is None:
            return hits
        ids = [_int_id(hit.chunk) for hit in unscored]
        cosines = dict(zip(ids, self.snapshot.index.reconstruct(ids) @ vector, strict=True))
        return [
            hit
            if "dense" in hit.scores
            else Hit(hit.chunk, hit.score, {**hit.scores, "dense": float(cosines[_int_id(hit.chunk)])})
            for hit in hits
        ]


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


def _open_bm25(path: Path, manifest: Manifest) -> BM25Index | None:
    """The snapshot's BM25 index, if it was built with one (snapshots from before BM25 have none)."""
    if not manifest.bm25:
        return None
    try:
        return BM25Index.load(path / BM25)
    except (OSError, ValueError) as exc:
        raise CorruptSnapshotError(f"{path}: cannot read the BM25 index: {exc}") from exc


def _as_filter(filters: Filters) -> ChunkFilter | None:
    if filters is None:
        return None
    return filters if callable(filters) else all_of(filters)


def _signals(
    int_id: int, fused: float, dense: Mapping[int, float], bm25: Mapping[int, float]
) -> dict[str, float]:
    signals = {"rrf": fused}
    if int_id in dense:
        signals["dense"] = dense[int_id]
    if int_id in bm25:
        signals["bm25"] = bm25[int_id]
    return signals


def _int_id(chunk: Chunk) -> int:
    return chunk_int_id(chunk.chunk_id)
