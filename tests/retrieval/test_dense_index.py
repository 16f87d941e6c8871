"""The FAISS wrapper: add, search, save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.index import DenseIndex

BIG_ID = 2**60 - 1  # the largest id chunk_int_id can produce


def unit_rows(n: int, dimension: int = 8) -> np.ndarray:
    return np.eye(dimension, dtype=np.float32)[:n]


def filled() -> DenseIndex:
    index = DenseIndex(8)
    index.add([BIG_ID, 7, 42], unit_rows(3))
    return index


def test_search_returns_ids_and_inner_products_best_first() -> None:
    query = np.array([0.6, 0.8, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    results = filled().search(query, 2)
    assert [i for i, _ in results] == [7, BIG_ID]
    assert [s for _, s in results] == pytest.approx([0.8, 0.6])


def test_k_beyond_size_returns_what_there_is() -> None:
    assert len(filled().search(unit_rows(1)[0], 10)) == 3
    assert DenseIndex(8).search(unit_rows(1)[0], 3) == []
    assert filled().search(unit_rows(1)[0], 0) == []


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    filled().save(tmp_path / "dense.faiss")
    loaded = DenseIndex.load(tmp_path / "dense.faiss")
    assert (len(loaded), loaded.dimension) == (3, 8)
    assert loaded.search(unit_rows(1)[0], 1) == [(BIG_ID, pytest.approx(1.0))]


def test_shapes_are_checked() -> None:
    index = DenseIndex(8)
    with pytest.raises(ValueError, match="dimension 8"):
        index.add([1], np.ones((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        index.add([1, 2], unit_rows(1))
    with pytest.raises(ValueError, match="dimension 8"):
        index.search(np.ones(4, dtype=np.float32), 1)


def test_float64_input_is_accepted() -> None:
    index = DenseIndex(8)
    index.add(np.array([3]), np.eye(8)[:1])
    assert len(index) == 1
