"""Embedders run by ONNX Runtime / OpenVINO: names, agreement with torch, and index rebuilds on a switch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core import embedder_spec
from core.models import ModelNotPulledError, prepare_embedder
from core.settings import DEFAULT_EMBEDDER, ChunkingSettings, Settings
from retrieval.embedders import embedder_name, load_embedder
from retrieval.refresh import refresh_index
from retrieval.snapshots import build_snapshot
from retrieval.sources import Document

TEXTS = [
    "The Driftglass tent costs 249 dollars.",
    "When will my parcel arrive?",
    "a tent",
    "Stores open at nine in the morning and close at six, Monday to Saturday, except on holidays.",
]
VARIANTS = ["onnx", "onnx-int8", "openvino", "openvino-int8"]


@pytest.fixture(scope="module")
def tiny(tiny_st_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, copied, with every backend's file exported."""
    model_dir = tmp_path_factory.mktemp("backends") / "tiny"
    shutil.copytree(tiny_st_dir, model_dir)
    for variant in VARIANTS:
        prepare_embedder(f"{model_dir}@{variant}", model_dir.parent, log=lambda _: None)
    return model_dir


@pytest.mark.parametrize("variant", VARIANTS)
def test_exported_backends_agree_with_torch(tiny: Path, variant: str) -> None:
    torch_vectors = load_embedder(f"{tiny}@torch", tiny.parent).embed(TEXTS)
    embedder = load_embedder(f"{tiny}@{variant}", tiny.parent)
    vectors = embedder.embed(TEXTS)
    assert embedder.name == f"{tiny}@{variant}"
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32 and embedder.dimension == 32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0] * 4, abs=1e-5)
    assert np.sum(vectors * torch_vectors, axis=1).min() > (0.99 if variant.endswith("int8") else 0.9999)
    assert embedder.embed([]).shape == (0, 32)


def test_token_counts_match_torch(tiny: Path) -> None:
    torch_embedder = load_embedder(f"{tiny}@torch", tiny.parent)
    assert load_embedder(f"{tiny}@openvino", tiny.parent).count_tokens(TEXTS) == torch_embedder.count_tokens(
        TEXTS
    )


def test_a_missing_export_says_how_to_make_it(tiny_st_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotPulledError, match="lorag models pull"):
        load_embedder(f"{tiny_st_dir}@onnx-int8", tmp_path)
    with pytest.raises(ModelNotPulledError, match="local model directory"):
        load_embedder("org/hub-model@openvino", tmp_path)


def test_no_suffix_means_openvino_on_cpu_and_torch_on_cuda(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedder_spec, "cuda_available", lambda: False)
    assert load_embedder(str(tiny), tiny.parent).name == f"{tiny}@openvino"
    assert embedder_name(DEFAULT_EMBEDDER) == f"{DEFAULT_EMBEDDER}@openvino"
    assert embedder_name("org/hub-model") == "org/hub-model"
    monkeypatch.setattr(embedder_spec, "cuda_available", lambda: True)
    assert load_embedder(str(tiny), tiny.parent).name == str(tiny)
    assert embedder_name(DEFAULT_EMBEDDER) == DEFAULT_EMBEDDER


def test_changing_the_backend_rebuilds_the_index(tiny: Path, tmp_path: Path) -> None:
    documents = [Document.from_text(f"d{i}.md", f"# Doc {i}\n\n{text}") for i, text in enumerate(TEXTS)]
    index = tmp_path / "index"
    torch_embedder = load_embedder(f"{tiny}@torch", tiny.parent)
    build_snapshot(documents, torch_embedder, ChunkingSettings(), index, progress=False)
    same = refresh_index(documents, load_embedder(f"{tiny}@torch", tiny.parent), ChunkingSettings(), index)
    assert same.status == "unchanged"
    switched = refresh_index(
        documents, load_embedder(f"{tiny}@onnx-int8", tiny.parent), ChunkingSettings(), index
    )
    assert switched.status == "built" and switched.chunks_embedded == len(documents)
    assert switched.full_rebuild is not None and f"to '{tiny}@onnx-int8'" in switched.full_rebuild


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_real_minilm_on_every_backend_is_close_to_torch(variant: str) -> None:
    """The real cached all-MiniLM-L6-v2 (exported by `lorag models pull` / `prepare_embedder`)."""
    cache_dir = Settings().cache_dir
    ref = f"{DEFAULT_EMBEDDER}@{variant}"
    prepare_embedder(ref, cache_dir, log=lambda _: None)
    reference = load_embedder(f"{DEFAULT_EMBEDDER}@torch", cache_dir).embed(TEXTS)
    vectors = load_embedder(ref, cache_dir).embed(TEXTS)
    assert vectors.shape == (4, 384)
    assert np.sum(vectors * reference, axis=1).min() > 0.99
