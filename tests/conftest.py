"""Fixtures shared across the test tree: the real SmolLM2 files from the model cache (no hub access)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.models import ModelNotPulledError, resolve_model
from core.settings import DEFAULT_CHAT_MODEL, Settings

# Tests never reach the hub: everything they load is a local directory.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smol_dir() -> Path:
    """The pulled SmolLM2 model directory: its tokenizer and chat template, as serving and training use."""
    try:
        return Path(resolve_model(DEFAULT_CHAT_MODEL, Settings().cache_dir))
    except ModelNotPulledError:
        pytest.fail(f"{DEFAULT_CHAT_MODEL} is not pulled: run `lorag models pull` (or `make models`) first")


@pytest.fixture(scope="session")
def smol_tokenizer(smol_dir):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)
