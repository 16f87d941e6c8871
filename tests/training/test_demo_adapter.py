"""Registering the shipped demo adapter: once, idempotently, without overriding a user's version."""

from __future__ import annotations

import json

import pytest

from training.demo_adapter import DEMO_ADAPTER_DIR, SHIPPED_FILES, register_demo_adapter
from training.registry import AdapterRegistry


@pytest.fixture
def shipped(tmp_path):
    source = tmp_path / "shipped"
    source.mkdir()
    (source / "adapter_config.json").write_text(json.dumps({"r": 16}))
    (source / "adapter_model.safetensors").write_bytes(b"weights")
    (source / "manifest.json").write_text(json.dumps({"name": "demo", "version": "v3", "base_model": "nope"}))
    return source


def test_registers_once_and_becomes_current(tmp_path, shipped):
    root = tmp_path / "adapters"
    first = register_demo_adapter(root, tmp_path / "cache", shipped)
    assert first.served_name == "demo@v1"
    assert first.manifest["shipped_version"] == "v3" and first.manifest["adapter_sha256"]
    again = register_demo_adapter(root, tmp_path / "cache", shipped)
    assert again.version == "v1" and AdapterRegistry(root).versions("demo") == ["v1"]


def test_a_users_current_version_is_kept(tmp_path, shipped):
    root = tmp_path / "adapters"
    registry = AdapterRegistry(root)
    mine = registry.register("demo", shipped.parent / "shipped", {"note": "user trained"})
    registry.set_current("demo", mine.version)
    (shipped / "adapter_model.safetensors").write_bytes(b"other weights")
    assert register_demo_adapter(root, tmp_path / "cache", shipped).version == mine.version
    assert registry.versions("demo") == ["v1", "v2"]


def test_the_shipped_artifact_is_complete():
    for name in SHIPPED_FILES:
        assert (DEMO_ADAPTER_DIR / name).is_file(), name
    manifest = json.loads((DEMO_ADAPTER_DIR / "manifest.json").read_text())
    assert manifest["base_model"] == "SmolLM2-135M-Instruct" and manifest["base_weights_sha256"]
    assert json.loads((DEMO_ADAPTER_DIR / "adapter_config.json").read_text())["r"] <= 16
