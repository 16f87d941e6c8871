"""Fixtures for the training tests: the real SmolLM2 tokenizer and a tiny 2-layer model built around it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from training.recipe import TrainConfig


@pytest.fixture(scope="session")
def tokenizer(smol_tokenizer):
    return smol_tokenizer


def write_jsonl(path: Path, records: Sequence[object]) -> Path:
    """Write records one JSON document a line (strings are written verbatim, for malformed lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def chat(question: str, answer: str) -> dict[str, list[dict[str, str]]]:
    """One single-turn training record."""
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


QA = [(f"Question number {i} about Lumora?", f"Answer {i}: " + "fox " * (i % 4 + 1)) for i in range(10)]
"""Ten short question/answer pairs of different lengths: the resume and precision tests' data."""


def config(model_dir, data_file, **overrides) -> TrainConfig:
    fields = dict(
        output_name="tiny",
        base_model=str(model_dir),
        data_files=[data_file],
        lora_r=4,
        lora_alpha=8,
        epochs=2,
        max_steps=6,
        batch_size=3,
        max_length=64,
        checkpoint_every=2,
        dtype="float32",
        lora_dropout=0.1,  # dropout draws from the RNG, which the checkpoint must restore
    )
    return TrainConfig(**{**fields, **overrides})


def weights(adapter):
    from safetensors.torch import load_file

    return load_file(adapter.path / "adapter_model.safetensors")
