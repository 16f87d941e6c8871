"""The on-disk registry as the gateway reads it (`serving.adapters.RegisteredAdapters`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import default_routes
from core.types import ModelRef
from serving.adapters import RegisteredAdapters
from serving.routing import RouteConfigError
from training.registry import AdapterRegistry


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """demo v1 (current, trained on Other-7B) and v2 (a candidate)."""
    source = tmp_path / "adapter"
    source.mkdir()
    (source / "adapter_config.json").write_text("{}")
    registry = AdapterRegistry(tmp_path / "adapters")
    for number in (1, 2):
        (source / "adapter_model.safetensors").write_bytes(f"weights-{number}".encode())
        registry.register("demo", source, {"base_model": "Other-7B"}, make_current=number == 1)
    return registry.root


def test_versions_current_and_lookups_read_the_registry(root):
    adapters = RegisteredAdapters(root)
    current = adapters.current("demo")
    assert current is not None and current.ref == ModelRef("demo", "v1")
    assert Path(current.path) == (root / "demo" / "v1").resolve()
    assert adapters.versions("demo") == ["v1", "v2"]
    v2 = adapters.version("demo", "v2")
    sha = AdapterRegistry(root).get("demo", "v2").manifest["adapter_sha256"]
    assert v2 is not None and v2.ref == ModelRef("demo", "v2") and v2.upstream_name == f"demo@v2-{sha[:8]}"
    assert current.digest != v2.digest  # other weights, other hash
    assert adapters.version("demo", "v9") is None and adapters.current("nope") is None


def test_an_adapter_of_another_base_model_is_refused(root):
    adapters = RegisteredAdapters(root)
    with pytest.raises(RouteConfigError, match="trained on 'Other-7B'"):
        adapters.for_routes(default_routes(), "SmolLM2-135M-Instruct")
    assert adapters.for_routes(default_routes(), "Other-7B")["demo"].ref == ModelRef("demo", "v1")


def test_a_version_without_a_recorded_hash_keeps_its_plain_name(root):
    manifest = root / "demo" / "v1" / "manifest.json"
    manifest.chmod(0o644)
    manifest.write_text(manifest.read_text().replace('"adapter_sha256"', '"old_sha256"'))
    v1 = RegisteredAdapters(root).version("demo", "v1")
    assert v1 is not None and v1.upstream_name == "demo@v1"
