"""The adapter registry: immutable versions, compatibility checks, an atomically switched alias, promote and
rollback."""

from __future__ import annotations

import json
import os

import pytest

from training.compatibility import IncompatibleAdapterError, Requirements
from training.fingerprint import files_sha256
from training.history import NothingToRollBackError
from training.registry import AdapterNotFoundError, AdapterRegistry, StaleGateError, TamperedAdapterError


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


def test_registered_files_are_read_only_and_hashed(registry, adapter_dir):
    adapter = registry.register("demo", adapter_dir, {})
    weights = adapter.path / "adapter_model.safetensors"
    assert not weights.stat().st_mode & 0o222
    assert set(adapter.manifest["files"]) == {"adapter_model.safetensors", "adapter_config.json"}
    assert adapter.manifest["adapter_sha256"] == files_sha256([adapter_dir / "adapter_model.safetensors"])
    assert registry.verify("demo", "v1") == adapter


@pytest.mark.parametrize(
    "tamper",
    [
        lambda path: _overwrite(path / "adapter_model.safetensors", b"weights-X"),
        lambda path: (path / "adapter_config.json").unlink(),
        lambda path: (path / "extra.safetensors").write_bytes(b"more"),
    ],
    ids=["changed", "missing", "added"],
)
def test_tampering_is_detected_and_blocks_promotion(registry, adapter_dir, tamper):
    adapter = registry.register("demo", adapter_dir, {})
    tamper(adapter.path)
    with pytest.raises(TamperedAdapterError, match="modified after registration"):
        registry.verify("demo", "v1")
    with pytest.raises(TamperedAdapterError):
        registry.promote("demo", "v1")
    assert registry.current("demo") is None
    assert registry.show("demo", "v1")["intact"] != True  # noqa: E712 - a message, not False


def test_a_version_number_is_never_registered_twice(registry, adapter_dir, monkeypatch):
    registry.register("demo", adapter_dir, {})
    # Even when the numbering races (another process picked v1 too), v1's files are not replaced.
    numbers = iter([1, 1, 2])
    monkeypatch.setattr(registry, "_next_number", lambda name: next(numbers))
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"weights-2")
    assert registry.register("demo", adapter_dir, {}).version == "v2"
    assert (registry.root / "demo" / "v1" / "adapter_model.safetensors").read_bytes() == b"weights-1"


def _overwrite(path, data: bytes) -> None:
    path.chmod(0o644)  # what someone bent on editing a version would do
    path.write_bytes(data)


def _config(adapter_dir, **fields) -> None:
    (adapter_dir / "adapter_config.json").write_text(json.dumps({"r": 8, **fields}))


@pytest.mark.parametrize(
    ("config", "requirements", "message"),
    [
        ({"r": 32}, Requirements(max_lora_rank=16), "rank 32 exceeds the server's max_lora_rank 16"),
        ({"rank_pattern": {"q_proj": 64}}, Requirements(max_lora_rank=16), "rank 64"),
        ({"modules_to_save": ["lm_head"]}, Requirements(), "modules_to_save"),
        ({}, Requirements(base_model_hash="b" * 64), "trained on base weights aaaaaaaaaaaa"),
    ],
    ids=["rank", "rank_pattern", "modules_to_save", "base_hash"],
)
def test_incompatible_adapters_are_refused_at_registration(
    registry, adapter_dir, config, requirements, message
):
    _config(adapter_dir, **config)
    with pytest.raises(IncompatibleAdapterError, match=message):
        registry.register("demo", adapter_dir, {"base_weights_sha256": "a" * 64}, requirements=requirements)
    assert registry.versions("demo") == []


def test_a_compatible_adapter_passes_every_check(registry, adapter_dir):
    _config(adapter_dir, r=16, modules_to_save=None)
    requirements = Requirements(base_model_hash="a" * 64, max_lora_rank=16)
    registry.register("demo", adapter_dir, {"base_weights_sha256": "a" * 64}, requirements=requirements)
    assert registry.check("demo", "v1", requirements).version == "v1"
    with pytest.raises(IncompatibleAdapterError, match="max_lora_rank 8"):
        registry.check("demo", "v1", Requirements(max_lora_rank=8))  # the server's limit was lowered since


def test_an_adapter_without_a_peft_config_is_refused(registry, adapter_dir):
    (adapter_dir / "adapter_config.json").unlink()
    with pytest.raises(IncompatibleAdapterError, match="not a PEFT adapter"):
        registry.register("demo", adapter_dir, {})


def test_register_makes_a_candidate_unless_asked(registry, adapter_dir):
    registry.register("demo", adapter_dir, {}, make_current=True)
    registry.register("demo", adapter_dir, {})
    assert registry.current("demo").version == "v1"
    assert [e["version"] for e in registry.history("demo")] == ["v1"]


def test_promote_records_when_and_what_it_replaced(registry, adapter_dir):
    for _ in range(2):
        registry.register("demo", adapter_dir, {})
    registry.promote("demo", "v1")
    registry.promote("demo", "v2", gate="score: 0.9 vs 0.8: pass")
    registry.promote("demo", "v2")  # already current: no new entry
    first, second = registry.history("demo")
    assert (first["action"], first["version"], first["previous"]) == ("promote", "v1", None)
    assert (second["version"], second["previous"], second["forced"]) == ("v2", "v1", False)
    assert second["gate"] == "score: 0.9 vs 0.8: pass" and second["at"]
    assert registry.current("demo").version == "v2"
    shown = registry.show("demo")
    assert shown["served_name"] == "demo@v2" and shown["current"] and shown["intact"] is True
    assert [e["action"] for e in shown["history"]] == ["promote"]


def test_rollback_goes_back_one_promotion_at_a_time(registry, adapter_dir):
    for _ in range(3):
        registry.register("demo", adapter_dir, {})
    for version in ("v1", "v2", "v3"):
        registry.promote("demo", version)
    assert registry.rollback("demo").version == "v2"
    assert registry.rollback("demo").version == "v1"  # a second rollback goes a step further back
    with pytest.raises(NothingToRollBackError, match="nothing to roll back to"):
        registry.rollback("demo")
    assert registry.current("demo").version == "v1"
    registry.promote("demo", "v3")
    assert registry.rollback("demo").version == "v1"  # v2 was rolled back away from: not revisited
    assert [e["action"] for e in registry.history("demo")][-2:] == ["promote", "rollback"]


def test_rollback_follows_an_alias_moved_without_history(registry, adapter_dir):
    for _ in range(2):
        registry.register("demo", adapter_dir, {})
    registry.set_current("demo", "v1")  # e.g. a registry from before the history file
    registry.promote("demo", "v2")
    assert registry.rollback("demo").version == "v1"
    with pytest.raises(AdapterNotFoundError):
        registry.rollback("other")


def test_rollback_refuses_a_tampered_target(registry, adapter_dir):
    for _ in range(2):
        registry.register("demo", adapter_dir, {})
    registry.promote("demo", "v1")
    registry.promote("demo", "v2")
    _overwrite(registry.root / "demo" / "v1" / "adapter_model.safetensors", b"evil")
    with pytest.raises(TamperedAdapterError):
        registry.rollback("demo")
    assert registry.current("demo").version == "v2"


def test_a_promotion_gated_against_a_replaced_version_is_refused(registry, adapter_dir):
    for _ in range(3):
        registry.register("demo", adapter_dir, {})
    registry.promote("demo", "v1")
    registry.promote("demo", "v2")  # another promotion landed while v3 was being gated against v1
    with pytest.raises(StaleGateError, match="demo@v1 was gated against, but demo@v2 is current"):
        registry.promote("demo", "v3", replacing="v1")
    assert registry.promote("demo", "v3", replacing="v2").version == "v3"
