"""The demo recipe on the real SmolLM2 through the CLI (three steps), and the shipped data's provenance."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from cli import app
from training.demo_data import DEMO_TRAIN_FILE, build_demo_dataset
from training.registry import AdapterRegistry


@pytest.mark.slow
def test_demo_smoke_preset_trains_and_registers(smol_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LORAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LORAG_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    config = DEMO_TRAIN_FILE.parents[2] / "configs" / "demo-smoke.yaml"
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "registered demo-smoke@v1" in result.output
    registry = AdapterRegistry(tmp_path / "home" / "adapters")
    assert registry.current("demo-smoke") is None  # a candidate until `lorag adapters promote`
    adapter = registry.get("demo-smoke", "v1")
    assert (adapter.path / "adapter_model.safetensors").is_file()
    metrics = adapter.manifest["metrics"]
    assert metrics["steps"] == 3
    assert math.isfinite(metrics["final_loss"]) and metrics["tokens_per_s"] > 0


def test_shipped_training_file_is_what_the_generator_writes(tmp_path):
    """`training/data/demo/train.jsonl` is reproducible from the facts, templates and corpus."""
    out = tmp_path / "train.jsonl"
    build_demo_dataset(out)
    assert out.read_bytes() == DEMO_TRAIN_FILE.read_bytes()
