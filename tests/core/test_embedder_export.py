"""Exporting an embedder once for ONNX Runtime / OpenVINO, from `lorag models pull` (a tiny real model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core import models
from core.embedder_export import EXPORT_FILES, ExportError, exported_file, pooling_mode
from core.models import prepare_embedder, pull_model

VARIANTS = ["onnx", "onnx-int8", "openvino", "openvino-int8"]


@pytest.fixture(scope="module")
def exported(tiny_st_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny model with every backend's file exported."""
    model_dir = tmp_path_factory.mktemp("exported") / "tiny"
    shutil.copytree(tiny_st_dir, model_dir)
    cache = model_dir.parent / "cache"
    for variant in VARIANTS:
        prepare_embedder(f"{model_dir}@{variant}", cache, log=lambda _: None)
    return model_dir


def test_every_backend_file_lands_inside_the_model_directory(exported: Path) -> None:
    for name in EXPORT_FILES.values():
        assert (exported / name).is_file(), name
    assert (exported / "openvino" / "openvino_model.bin").is_file()
    assert not [p.name for p in exported.rglob(".*tmp*")], "temporary files left behind"


def test_prepare_returns_the_embedder_name_and_exports_only_once(exported: Path) -> None:
    log: list[str] = []
    before = exported_file(exported, "onnx", "int8").stat().st_mtime_ns
    assert (
        prepare_embedder(f"{exported}@onnx-int8", exported.parent, log=log.append) == f"{exported}@onnx-int8"
    )
    assert exported_file(exported, "onnx", "int8").stat().st_mtime_ns == before
    assert not any("exporting" in line or "preparing" in line for line in log), log


def test_prepare_for_torch_exports_nothing(tiny_st_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "tiny"
    shutil.copytree(tiny_st_dir, model_dir)
    assert prepare_embedder(f"{model_dir}@torch", tmp_path) == str(model_dir)
    assert not (model_dir / "onnx").exists() and not (model_dir / "openvino").exists()


def test_pull_model_prepares_an_embedder_reference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    prepared: list[str] = []
    monkeypatch.setattr(models, "prepare_embedder", lambda ref, cache, log: prepared.append(ref) or ref)
    assert pull_model(f"{tmp_path}@openvino", tmp_path) == str(tmp_path.resolve())
    pull_model("some/chat-model", tmp_path)
    assert prepared == [f"{tmp_path}@openvino"]


def test_a_hub_id_cannot_be_exported(tmp_path: Path) -> None:
    with pytest.raises(models.ModelNotPulledError, match="needs a local model directory"):
        prepare_embedder("org/hub-model@onnx", tmp_path)


def test_unsupported_modules_and_pooling_are_refused_before_exporting(
    tiny_st_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "tiny"
    shutil.copytree(tiny_st_dir, model_dir)
    assert pooling_mode(model_dir) == "mean"
    pooling = model_dir / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({"embedding_dimension": 32, "pooling_mode": "max"}))
    with pytest.raises(ExportError, match="mean or CLS only"):
        prepare_embedder(f"{model_dir}@onnx", tmp_path)
    modules = json.loads((model_dir / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (model_dir / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ExportError, match="use the torch backend"):
        prepare_embedder(f"{model_dir}@openvino", tmp_path)
    assert not (model_dir / "onnx").exists()


def test_old_style_pooling_configs_are_read(tmp_path: Path) -> None:
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(
        json.dumps([{"path": "", "type": "x.Transformer"}, {"path": "1_Pooling", "type": "x.Pooling"}])
    )
    config = {
        "pooling_mode_cls_token": True,
        "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False,
    }
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(config))
    assert pooling_mode(tmp_path) == "cls"
    config["pooling_mode_max_tokens"] = True
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError):
        pooling_mode(tmp_path)
