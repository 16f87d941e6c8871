"""The dense vector index: exact inner-product search in FAISS over unit vectors (cosine similarity).

Vectors are stored under int64 ids, `chunking.chunk_int_id(chunk.chunk_id)`: derived from the content hash,
so the same chunk gets the same id in every snapshot, and the SQLite store looks chunks up by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np


class DenseIndex:
    """`IndexIDMap2(IndexFlatIP(dim))`: exact search, which is fast enough for tens of thousands of chunks
    and needs no training, so a snapshot of any size builds the same way."""

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        """An empty index of `dimension`, or a wrapper around a loaded one."""
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        if self._index.d != dimension:
            raise ValueError(f"index has dimension {self._index.d}, expected {dimension}")

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add one row of `vectors` (shape `(n, dimension)`) under each of the `n` ids."""
        id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
        matrix = self._matrix(vectors)
        if len(id_array) != len(matrix):
            raise ValueError(f"{len(id_array)} ids for {len(matrix)} vectors")
        if len(id_array):
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

    def save(self, path: Path) -> None:
        """Write the index to one file."""
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        """Read an index written by `save`."""
        if not path.is_file():
            raise FileNotFoundError(f"vector index {path} does not exist")
        index = faiss.read_index(str(path))
        return cls(index.d, index)

    def _matrix(self, vectors: np.ndarray) -> np.ndarray:
        """`vectors` as a C-contiguous float32 matrix, which is all FAISS accepts."""
        matrix = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got shape {np.shape(vectors)}")
        return matrix
