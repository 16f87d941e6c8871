"""Fixtures of the CLI tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A fresh lorag home as the working directory's settings see it (no config file in effect)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LORAG_CONFIG", raising=False)
    monkeypatch.setenv("LORAG_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
