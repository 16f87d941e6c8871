"""Every YAML preset in training/configs loads, and is headed by the command that runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.demo_data import DEMO_TRAIN_FILE
from training.recipe import load_config

REPO = Path(__file__).resolve().parents[2]
PRESETS = sorted((REPO / "training" / "configs").glob("*.yaml"))


def test_there_are_presets():
    assert {p.name for p in PRESETS} >= {"demo.yaml", "demo-smoke.yaml"}


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_loads_and_names_its_command(path):
    first_line = path.read_text().splitlines()[0]
    assert first_line == f"# lorag train --config {path.relative_to(REPO)}"
    config = load_config(path)
    assert config.output_name and config.data_files


def test_demo_presets_train_the_demo_data():
    demo = load_config(REPO / "training" / "configs" / "demo.yaml")
    smoke = load_config(REPO / "training" / "configs" / "demo-smoke.yaml")
    assert [p.resolve() for p in demo.data_files] == [DEMO_TRAIN_FILE.resolve()]
    assert smoke.data_files == demo.data_files and smoke.max_steps == 3
    assert demo.output_name == "demo" and demo.max_steps is None and 6 <= demo.epochs <= 10
    assert demo.lora_r == 16 and demo.max_length == 512 and demo.dtype == "bfloat16"
