"""Index kinds: flat (exact), hnsw and ivf (approximate), their parameters, save/load and reconstruct."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from retrieval.index import DenseIndex

DIMENSION = 32


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, DIMENSION)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors = unit_rows(2000)
    ids = np.arange(len(vectors), dtype=np.int64) * 1_000_003 + 2**59  # large, sparse, like chunk ids
    return ids, vectors, unit_rows(50, seed=1)


def filled(kind: str, data: tuple[np.ndarray, np.ndarray, np.ndarray], **params: object) -> DenseIndex:
    ids, vectors, _ = data
    index = DenseIndex.create(kind, DIMENSION, **params)
    index.add(ids, vectors)
    return index


def recall_at_10(index: DenseIndex, exact: DenseIndex, queries: np.ndarray) -> float:
    found = [
        len({i for i, _ in index.search(q, 10)} & {i for i, _ in exact.search(q, 10)}) / 10 for q in queries
    ]
    return float(np.mean(found))


def test_flat_is_the_default_and_exact(data) -> None:
    ids, vectors, queries = data
    index = DenseIndex(DIMENSION)
    assert (index.kind, index.params) == ("flat", {})
    index.add(ids, vectors)
    best = int(np.argmax(vectors @ queries[0]))
    assert index.search(queries[0], 1) == [(int(ids[best]), pytest.approx(float(vectors[best] @ queries[0])))]


@pytest.mark.parametrize(("kind", "params"), [("hnsw", {}), ("ivf", {"nprobe": 32})])
def test_approximate_kinds_recall_most_of_the_exact_top_10(data, kind: str, params: dict) -> None:
    exact = filled("flat", data)
    index = filled(kind, data, **params)
    assert (index.kind, len(index)) == (kind, 2000)
    assert recall_at_10(index, exact, data[2]) >= 0.9
    # Scores are still inner products of the stored unit vectors.
    [(hit, score)] = index.search(data[2][0], 1)
    assert score == pytest.approx(float(index.reconstruct([hit])[0] @ data[2][0]), abs=1e-5)


def test_hnsw_parameters(data) -> None:
    index = DenseIndex.create("hnsw", DIMENSION, m=8, ef_construction=40, ef_search=16)
    assert index.params == {"m": 8, "ef_construction": 40, "ef_search": 16}
    with pytest.raises(ValueError, match="unknown parameters for a hnsw index"):
        DenseIndex.create("hnsw", DIMENSION, nprobe=3)
    with pytest.raises(ValueError, match="unknown index kind"):
        DenseIndex.create("annoy", DIMENSION)


def test_ivf_is_trained_on_the_first_batch(data) -> None:
    ids, vectors, _ = data
    index = DenseIndex.create("ivf", DIMENSION)
    assert len(index) == 0 and index.search(vectors[0], 3) == []
    index.add(ids, vectors)
    inner = faiss.extract_index_ivf(index._index)
    assert inner.nlist == 2000 // 39  # 4 * sqrt(2000) ~ 179 cells would get too few points to train
    index.add([7], vectors[:1])  # later vectors go to the trained cells
    assert len(index) == 2001 and index.search(vectors[0], 2)[0][1] == pytest.approx(1.0)
    tiny = DenseIndex.create("ivf", DIMENSION)
    tiny.add([1, 2], vectors[:2])
    assert [i for i, _ in tiny.search(vectors[1], 2)] == [2, 1]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_and_load_keep_kind_parameters_and_vectors(tmp_path: Path, data, kind: str) -> None:
    ids, vectors, queries = data
    index = filled(kind, data)
    index.save(tmp_path / "dense.faiss")
    loaded = DenseIndex.load(tmp_path / "dense.faiss")
    assert (loaded.kind, loaded.params, len(loaded)) == (kind, index.params, 2000)
    assert loaded.search(queries[0], 5) == index.search(queries[0], 5)
    np.testing.assert_array_equal(loaded.ids(), ids)
    np.testing.assert_allclose(loaded.reconstruct(ids[[5, 0, 1999]]), vectors[[5, 0, 1999]], atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_reconstruct(data, kind: str) -> None:
    ids, vectors, _ = data
    index = filled(kind, data)
    np.testing.assert_allclose(index.reconstruct(ids[[3, 2]]), vectors[[3, 2]], atol=1e-6)
    assert index.reconstruct([]).shape == (0, DIMENSION)
    with pytest.raises(KeyError, match="12345"):
        index.reconstruct([int(ids[0]), 12345])


def test_a_rebuild_with_the_same_kind_and_parameters(data) -> None:
    """What a refresh does with an index it cannot edit: carry the vectors over into a new one."""
    ids, _, queries = data
    old = filled("hnsw", data, m=16)
    keep = ids[::2]
    new = DenseIndex.create(old.kind, old.dimension, **old.params)
    new.add(keep, old.reconstruct(keep))
    assert (new.params["m"], len(new)) == (16, 1000)
    assert {i for i, _ in new.search(queries[0], 10)} <= set(keep.tolist())
