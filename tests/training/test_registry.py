"""The adapter registry: numbered immutable versions, manifests, and an atomically switched alias."""

from __future__ import annotations

import json
import os

import pytest

from training.registry import AdapterNotFoundError, AdapterRegistry


@pytest.fixture
def adapter_dir(tmp_path):
    path = tmp_path / "out"
    path.mkdir()
    (path / "adapter_model.safetensors").write_bytes(b"weights-1")
    (path / "adapter_config.json").write_text("{}")
    return path


@pytest.fixture
def registry(tmp_path):
    return AdapterRegistry(tmp_path / "adapters")


def test_register_numbers_versions_and_writes_the_manifest(registry, adapter_dir):
    first = registry.register("demo", adapter_dir, {"base_model": "m", "metrics": {"final_loss": 1.5}})
    second = registry.register("demo", adapter_dir, {"base_model": "m", "parent": "v1"})
    assert (first.version, second.version) == ("v1", "v2")
    assert first.path == registry.root / "demo" / "v1"
    assert (first.path / "adapter_model.safetensors").read_bytes() == b"weights-1"
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["name"] == "demo" and manifest["version"] == "v1" and manifest["base_model"] == "m"
    assert manifest["metrics"] == {"final_loss": 1.5} and "created_at" in manifest
    assert registry.get("demo", "v1").manifest == manifest == first.manifest
    assert registry.versions("demo") == ["v1", "v2"]
    assert registry.names() == ["demo"]
    assert second.served_name == "demo@v2"


def test_versions_are_immutable_copies(registry, adapter_dir):
    first = registry.register("demo", adapter_dir, {})
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"weights-2")
    second = registry.register("demo", adapter_dir, {})
    assert (first.path / "adapter_model.safetensors").read_bytes() == b"weights-1"
    assert (second.path / "adapter_model.safetensors").read_bytes() == b"weights-2"
    # No staging directories are left behind.
    assert sorted(p.name for p in (registry.root / "demo").iterdir()) == ["v1", "v2"]


def test_version_numbers_sort_numerically_and_are_never_reused(registry, adapter_dir):
    for _ in range(10):
        registry.register("demo", adapter_dir, {})
    assert registry.versions("demo")[-2:] == ["v9", "v10"]
    (registry.root / "demo" / "v11").mkdir()  # a half-written version still takes its number
    assert registry.register("demo", adapter_dir, {}).version == "v12"


def test_current_alias_switches_between_existing_versions(registry, adapter_dir):
    registry.register("demo", adapter_dir, {})
    registry.register("demo", adapter_dir, {})
    assert registry.current("demo") is None
    registry.set_current("demo", "v2")
    assert registry.current("demo").version == "v2"
    assert (registry.root / "demo" / "current").read_text() == "v2\n"
    registry.set_current("demo", "v1")  # rollback
    assert registry.current("demo").served_name == "demo@v1"
    with pytest.raises(AdapterNotFoundError):
        registry.set_current("demo", "v3")
    assert registry.current("demo").version == "v1"


def test_alias_is_replaced_atomically(registry, adapter_dir, monkeypatch):
    registry.register("demo", adapter_dir, {})
    registry.register("demo", adapter_dir, {})
    registry.set_current("demo", "v1")
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: replaced.append((src, dst)) or real_replace(src, dst))
    registry.set_current("demo", "v2")
    assert [os.path.basename(dst) for _, dst in replaced] == ["current"]

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        registry.set_current("demo", "v1")
    # A failed switch leaves the old alias and no temporary file.
    assert registry.current("demo").version == "v2"
    assert sorted(p.name for p in (registry.root / "demo").iterdir()) == ["current", "v1", "v2"]


def test_lookups_of_missing_adapters(registry, adapter_dir):
    assert registry.names() == [] and registry.versions("demo") == []
    assert registry.current("demo") is None
    registry.register("demo", adapter_dir, {})
    for name, version in [("demo", "v2"), ("other", "v1"), ("demo", "current"), ("../demo", "v1")]:
        with pytest.raises(AdapterNotFoundError):
            registry.get(name, version)


@pytest.mark.parametrize("name", ["", "a@b", "a/b", ".hidden", "sp ace"])
def test_invalid_names_are_refused(registry, adapter_dir, name):
    with pytest.raises(ValueError, match="invalid adapter name"):
        registry.register(name, adapter_dir, {})


def test_registry_owned_fields_cannot_be_passed(registry, adapter_dir):
    with pytest.raises(ValueError, match="set by the registry"):
        registry.register("demo", adapter_dir, {"version": "v7"})
