"""The demo handbook: the 24 static facts, written as prose, shipped with the package."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from training.demo_data import DEMO_DIR

HANDBOOK = DEMO_DIR / "handbook"
ROOT = Path(__file__).parents[3]


def test_the_handbook_states_every_static_fact_in_prose():
    text = " ".join(path.read_text(encoding="utf-8") for path in sorted(HANDBOOK.glob("*.md")))
    flat = " ".join(text.split())
    facts = [json.loads(line) for line in (DEMO_DIR / "facts.jsonl").read_text().splitlines() if line]
    assert len(facts) == 24
    for fact in facts:
        assert fact["answer"].rstrip(".") in flat, fact["id"]
    assert "?" not in text  # a handbook, not a list of questions
    assert 1000 <= len(flat.split()) <= 2500  # two to four pages


def test_the_handbook_ships_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["training"]
    shipped = {path for pattern in patterns for path in (ROOT / "training").glob(pattern)}
    assert set(HANDBOOK.glob("*.md")) <= shipped
    assert "training.docs" in config["tool"]["setuptools"]["packages"]
