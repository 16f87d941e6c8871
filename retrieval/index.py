"""The dense vector index: inner-product search in FAISS over unit vectors (cosine similarity).

Vectors are stored under int64 ids, `chunking.chunk_int_id(chunk.chunk_id)`: derived from the content hash,
so the same chunk gets the same id in every snapshot, and the SQLite store looks chunks up by it.

Three kinds, each wrapped in `IndexIDMap2` (which maps our ids to FAISS's row numbers and back):

- `flat`: exact search. The default: no training, no tuning, fast enough for ~100K chunks.
- `hnsw`: a graph for approximate search in about a millisecond at any size. It cannot remove vectors, so an
  incremental refresh rebuilds it from the stored vectors (`reconstruct`), which is cheap next to embedding.
- `ivf`: k-means cells; trained on the first vectors added, so build it from the whole corpus at once.

The kind and its parameters live in the FAISS file itself (FAISS writes the index type, `efSearch` and
`nprobe`), so `load` restores them and an index saved before kinds existed loads as `flat`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import faiss
import numpy as np

IndexKind = Literal["flat", "hnsw", "ivf"]
KINDS: tuple[str, ...] = get_args(IndexKind)
HNSW_DEFAULTS: dict[str, Any] = {"m": 16, "ef_construction": 100, "ef_search": 128}
"""Tuned on 100K clustered unit vectors of 384 dimensions (`bench.retrieval`), one thread: recall@10 0.986
against exact search at 0.5 ms a query (ef_search=64: the same recall at 0.26 ms). m=32 builds 4x slower
(about 2 minutes on 2 cores) for no gain there, and a refresh rebuilds the graph each time."""
IVF_DEFAULTS: dict[str, Any] = {"nlist": None, "nprobe": 32}
"""`nlist=None`: about 4 * sqrt(n) cells, and no more than n / 39 (FAISS wants 39 training points a cell)."""
_PARAMS: dict[str, dict[str, Any]] = {"flat": {}, "hnsw": HNSW_DEFAULTS, "ivf": IVF_DEFAULTS}


class DenseIndex:
    """A FAISS index of unit vectors under int64 chunk ids; searches are safe to run from many threads."""

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        """An empty exact (`flat`) index of `dimension`, or a wrapper around a loaded `IndexIDMap2`."""
        self._dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        if self._index.d != dimension:
            raise ValueError(f"index has dimension {self._index.d}, expected {dimension}")
        self._kind: str = _kind_of(self._index)
        self._params: dict[str, Any] = _params_of(self._index)

    @classmethod
    def create(cls, kind: str = "flat", dimension: int = 384, **params: Any) -> DenseIndex:
        """An empty index of `kind`. Parameters (defaults in `HNSW_DEFAULTS`, `IVF_DEFAULTS`):

        - hnsw: `m` (graph degree), `ef_construction`, `ef_search` (higher: better recall, slower).
        - ivf: `nlist` (cells; None picks from the first batch added), `nprobe` (cells searched).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}: choose one of {', '.join(KINDS)}")
        unknown = set(params) - set(_PARAMS[kind])
        if unknown:
            raise ValueError(f"unknown parameters for a {kind} index: {sorted(unknown)}")
        settings = {**_PARAMS[kind], **params}
        inner: Any
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dimension, int(settings["m"]), faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = int(settings["ef_construction"])
            inner.hnsw.efSearch = int(settings["ef_search"])
        elif kind == "ivf":
            # A placeholder until the first `add` trains the real one, with nlist chosen from its size.
            inner = _ivf(dimension, settings["nlist"] or 1, settings["nprobe"])
        else:
            inner = faiss.IndexFlatIP(dimension)
        index = cls(dimension, faiss.IndexIDMap2(inner))
        index._params = settings
        return index

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def kind(self) -> str:
        """`flat`, `hnsw` or `ivf`."""
        return self._kind

    @property
    def params(self) -> dict[str, Any]:
        """The parameters to `create` an index of the same kind with (e.g. when a refresh rebuilds it)."""
        return dict(self._params)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add one row of `vectors` (shape `(n, dimension)`) under each of the `n` ids.

        An empty `ivf` index is trained on the first vectors added; later ones go to the existing cells.
        """
        id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
        matrix = self._matrix(vectors)
        if len(id_array) != len(matrix):
            raise ValueError(f"{len(id_array)} ids for {len(matrix)} vectors")
        if not len(id_array):
            return
        if not self._index.is_trained and len(self) == 0:
            self._train(matrix)
        self._index.add_with_ids(matrix, id_array)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The `k` nearest ids with their inner products, best first (fewer when the index is smaller)."""
        query = self._matrix(vector)
        k = min(k, len(self))
        if k <= 0:
            return []
        scores, ids = self._index.search(query, k)
        # FAISS pads with -1 when it finds fewer than k results.
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def ids(self) -> np.ndarray:
        """Every id in the index, in insertion order."""
        id_map = self._index.id_map  # type: ignore[attr-defined]  # IndexIDMap2, untyped in faiss's stubs
        return faiss.vector_to_array(id_map).astype(np.int64)

    def reconstruct(self, int_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored vectors of `int_ids`, shape `(n, dimension)`; `KeyError` names ids not in the index.

        Works for every kind (an `ivf` index keeps a direct map for it), so an incremental refresh can
        carry unchanged vectors into a new index without embedding them again.
        """
        id_array = np.asarray(int_ids, dtype=np.int64).reshape(-1)
        if not len(id_array):
            return np.zeros((0, self.dimension), dtype=np.float32)
        try:
            return self._index.reconstruct_batch(id_array)
        except RuntimeError:
            # Looking the ids up first would cost a pass over every id on each call; only errors pay it.
            missing = np.setdiff1d(id_array, self.ids())
            if not len(missing):
                raise
            raise KeyError(f"ids not in the index: {missing[:10].tolist()}") from None

    def save(self, path: Path) -> None:
        """Write the index to one file."""
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        """Read an index written by `save`, of whatever kind."""
        if not path.is_file():
            raise FileNotFoundError(f"vector index {path} does not exist")
        index = faiss.read_index(str(path))
        return cls(index.d, index)

    def _train(self, matrix: np.ndarray) -> None:
        """Replace the untrained `ivf` placeholder by one trained on `matrix`."""
        nlist = self._params.get("nlist") or _default_nlist(len(matrix))
        nlist = min(int(nlist), len(matrix))
        inner = _ivf(self.dimension, nlist, int(self._params.get("nprobe") or IVF_DEFAULTS["nprobe"]))
        inner.train(matrix)
        # A direct map (row number -> list and offset) is what lets an IVF index reconstruct vectors.
        inner.make_direct_map(True)
        self._index = faiss.IndexIDMap2(inner)

    def _matrix(self, vectors: np.ndarray) -> np.ndarray:
        """`vectors` as a C-contiguous float32 matrix, which is all FAISS accepts."""
        matrix = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got shape {np.shape(vectors)}")
        return matrix


def _ivf(dimension: int, nlist: int, nprobe: int) -> faiss.IndexIVFFlat:
    inner = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    inner.nprobe = int(nprobe)  # FAISS searches min(nprobe, nlist) cells
    return inner


def _default_nlist(n: int) -> int:
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def _kind_of(index: faiss.Index) -> str:
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    if isinstance(inner, faiss.IndexFlat):
        return "flat"
    raise ValueError(f"unsupported FAISS index type {type(inner).__name__}")


def _params_of(index: faiss.Index) -> dict[str, Any]:
    """The parameters a loaded index was made with, as far as its file records them."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    if isinstance(inner, faiss.IndexHNSW):
        # M is the degree of the upper layers; layer 0 has 2 * M neighbours.
        hnsw = inner.hnsw
        return {
            "m": int(hnsw.nb_neighbors(1)),  # type: ignore[attr-defined]
            "ef_construction": int(hnsw.efConstruction),
            "ef_search": int(hnsw.efSearch),
        }
    if isinstance(inner, faiss.IndexIVF):
        # nlist is left to be chosen again for the size of the corpus a rebuild indexes.
        return {"nlist": None, "nprobe": int(inner.nprobe)}
    return {}
