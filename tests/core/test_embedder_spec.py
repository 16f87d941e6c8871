"""Embedder references: parsing the `@backend[-int8]` suffix, names, and the per-machine default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core import embedder_spec
from core.embedder_spec import EmbedderRefError, EmbedderSpec, parse_embedder_ref, resolve_spec
from core.settings import DEFAULT_EMBEDDER, load_settings


@pytest.mark.parametrize(
    ("ref", "spec"),
    [
        ("all-MiniLM-L6-v2", EmbedderSpec("all-MiniLM-L6-v2")),
        ("all-MiniLM-L6-v2@torch", EmbedderSpec("all-MiniLM-L6-v2", "torch")),
        ("all-MiniLM-L6-v2@onnx", EmbedderSpec("all-MiniLM-L6-v2", "onnx")),
        ("all-MiniLM-L6-v2@onnx-int8", EmbedderSpec("all-MiniLM-L6-v2", "onnx", "int8")),
        ("/models/e5@openvino-int8", EmbedderSpec("/models/e5", "openvino", "int8")),
        ("/models/a@b/e5@openvino", EmbedderSpec("/models/a@b/e5", "openvino")),
        ("/data/me@host/e5", EmbedderSpec("/data/me@host/e5")),
    ],
)
def test_references_parse(ref: str, spec: EmbedderSpec) -> None:
    assert parse_embedder_ref(ref) == spec


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("all-MiniLM-L6-v2@tensorrt", "unknown backend 'tensorrt'"),
        ("all-MiniLM-L6-v2@onnx-fp16", "unknown quantisation 'fp16'"),
        ("all-MiniLM-L6-v2@torch-int8", "int8 needs the onnx or openvino backend"),
        ("@onnx", "names no model"),
    ],
)
def test_bad_references_say_what_is_wrong(ref: str, message: str) -> None:
    with pytest.raises(EmbedderRefError, match=message):
        parse_embedder_ref(ref)


def test_the_name_carries_backend_and_quantisation_and_torch_keeps_the_bare_name() -> None:
    assert EmbedderSpec("m", "onnx", "int8").name == "m@onnx-int8"
    assert EmbedderSpec("m", "openvino").name == "m@openvino"
    assert EmbedderSpec("m", "torch").name == "m"
    with pytest.raises(ValueError, match="resolve it first"):
        _ = EmbedderSpec("m").name


def test_the_default_is_openvino_on_cpu_and_torch_on_cuda() -> None:
    default = parse_embedder_ref(load_settings().embedder)
    assert default == EmbedderSpec(DEFAULT_EMBEDDER)
    assert resolve_spec(default, local=True, cuda=False).name == f"{DEFAULT_EMBEDDER}@openvino"
    assert resolve_spec(default, local=True, cuda=True).name == DEFAULT_EMBEDDER


def test_a_hub_id_stays_on_torch_and_an_explicit_backend_is_kept() -> None:
    assert resolve_spec(EmbedderSpec("org/model"), local=False, cuda=False).backend == "torch"
    explicit = EmbedderSpec("m", "onnx", "int8")
    assert resolve_spec(explicit, local=True, cuda=True) == explicit


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the shortcut is for Linux")
def test_without_a_gpu_device_node_cuda_is_answered_without_importing_torch() -> None:
    code = (
        "import sys\n"
        "from core import embedder_spec\n"
        "embedder_spec._gpu_device_nodes = lambda: False\n"
        "assert embedder_spec.cuda_available() is False\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_cuda_available_asks_torch_where_a_gpu_may_be(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    embedder_spec.cuda_available.cache_clear()
    monkeypatch.setattr(embedder_spec, "_gpu_device_nodes", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    try:
        assert embedder_spec.cuda_available() is True
    finally:
        embedder_spec.cuda_available.cache_clear()


def test_settings_refuse_an_unknown_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAG_EMBEDDER", "all-MiniLM-L6-v2@tensorrt")
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        load_settings()
    monkeypatch.setenv("LORAG_EMBEDDER", "all-MiniLM-L6-v2@onnx-int8")
    assert load_settings().embedder == "all-MiniLM-L6-v2@onnx-int8"
