"""The embedder protocol, the lazy sentence-transformers embedder, and the real model (slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.models import ModelNotPulledError, resolve_model
from core.settings import DEFAULT_EMBEDDER, ChunkingSettings, Settings
from retrieval.embedders import Embedder, SentenceTransformerEmbedder, load_embedder
from retrieval.search import open_retriever
from retrieval.snapshots import build_snapshot
from retrieval.sources import Document


def test_fake_satisfies_the_protocol(embedder: Embedder) -> None:
    vectors = embedder.embed(["a tent", "a jacket"])
    assert isinstance(embedder, Embedder)
    assert vectors.shape == (2, embedder.dimension) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0])


def test_importing_retrieval_and_building_an_embedder_load_nothing_heavy() -> None:
    # A fresh interpreter: this one may have imported torch for other tests.
    code = (
        "import sys, retrieval, retrieval.search, retrieval.snapshots\n"
        "from retrieval.embedders import SentenceTransformerEmbedder\n"
        "SentenceTransformerEmbedder('/nowhere/model', name='x')\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_name_defaults_to_the_model_reference() -> None:
    assert SentenceTransformerEmbedder("some/model").name == "some/model"
    assert SentenceTransformerEmbedder("/cache/dir", name="all-MiniLM-L6-v2").name == "all-MiniLM-L6-v2"


def test_unpulled_packaged_model_says_how_to_pull(tmp_path: Path) -> None:
    with pytest.raises(ModelNotPulledError, match="lorag models pull"):
        load_embedder(DEFAULT_EMBEDDER, tmp_path / "empty-cache")


PARAPHRASE_CORPUS = {
    "returns.md": "## Returns window\n\nUnworn items can be sent back within 30 days of purchase.\n",
    "shipping.md": "## Delivery times\n\nStandard delivery takes three to five working days.\n",
    "stores.md": "## Opening hours\n\nOur shops open at 9 am and close at 6 pm, Monday to Saturday.\n",
    "pricing.md": "## Tent price\n\nThe Driftglass tent costs $249.\n",
}


@pytest.fixture(scope="module")
def real_embedder() -> SentenceTransformerEmbedder:
    cache_dir = Settings().cache_dir
    try:
        resolve_model(DEFAULT_EMBEDDER, cache_dir)
    except ModelNotPulledError as exc:
        pytest.fail(f"{exc} (cache: {cache_dir})")
    return load_embedder(DEFAULT_EMBEDDER, cache_dir)


@pytest.mark.slow
def test_real_model_vectors(real_embedder: SentenceTransformerEmbedder) -> None:
    vectors = real_embedder.embed(["a tent", "a jacket", "a tent"])
    assert real_embedder.dimension == 384 and vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0] * 3, abs=1e-5)
    assert vectors[0] == pytest.approx(vectors[2], abs=1e-5)
    assert real_embedder.embed([]).shape == (0, 384)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("query", "source"),
    [
        ("How long do I have to bring back something I bought?", "returns.md"),
        ("When will my parcel arrive?", "shipping.md"),
        ("What time does the shop shut?", "stores.md"),
        ("How expensive is the Driftglass?", "pricing.md"),
    ],
)
def test_real_model_finds_a_paraphrase(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder, query: str, source: str
) -> None:
    documents = [Document.from_text(name, text) for name, text in PARAPHRASE_CORPUS.items()]
    build_snapshot(documents, real_embedder, ChunkingSettings(), tmp_path / "index", progress=False)
    hits = open_retriever(tmp_path / "index", real_embedder).search(query, 4)
    assert hits[0].chunk.source_id == source, [(h.chunk.source_id, round(h.score, 3)) for h in hits]
