"""The plugin's entry point, its patch of `punica_cpu`, and the vLLM version guard."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from cpu_lora import ops, patch
from cpu_lora.compat import UnsupportedVLLMError, check_vllm_version, major_minor
from cpu_lora.plugin import activate, register


@pytest.fixture
def punica_cpu() -> Iterator[object]:
    """`punica_cpu` with vLLM's own ops, put back that way after the test."""
    module = patch.punica_cpu_module()
    patch.restore(module)
    yield module
    patch.restore(module)


def test_register_binds_the_grouped_ops_in_punica_cpu_and_logs_once(punica_cpu, caplog) -> None:  # type: ignore[no-untyped-def]
    from vllm.lora.ops import torch_ops

    original = punica_cpu.bgmv_expand
    with caplog.at_level(logging.INFO, logger="vllm.lorag_cpu_lora"):
        register()
        register()  # vLLM may load plugins more than once in a process
    assert all(getattr(punica_cpu, name) is op for name, op in ops.OPS.items())
    assert torch_ops.bgmv_expand is original  # the originals stay where vLLM defines them
    lines = [r.getMessage() for r in caplog.records if "lorag cpu_lora" in r.getMessage()]
    assert lines == [f"lorag cpu_lora: grouped LoRA ops active (vllm {__import__('vllm').__version__})"]
    assert patch.restore(punica_cpu) and punica_cpu.bgmv_expand is original


def test_off_cpu_the_plugin_does_nothing_whatever_the_version(punica_cpu) -> None:  # type: ignore[no-untyped-def]
    assert activate(platform_is_cpu=False, vllm_version="0.99.0") is False
    assert not patch.is_applied(punica_cpu)


def test_on_cpu_an_untested_vllm_is_refused_before_patching(punica_cpu) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsupportedVLLMError, match=r"tested with vLLM 0\.32\.x only, but vLLM '0\.33\.0'"):
        activate(platform_is_cpu=True, vllm_version="0.33.0")
    assert not patch.is_applied(punica_cpu)


@pytest.mark.parametrize("version", ["0.32.0", "0.32.3+cpu", "0.32.1.dev4+g1234"])
def test_tested_versions_pass_the_guard(version: str) -> None:
    check_vllm_version(version)


@pytest.mark.parametrize("version", ["0.31.9", "0.33.0", "1.32.0", "dev", ""])
def test_other_versions_are_refused_with_how_to_turn_the_plugin_off(version: str) -> None:
    with pytest.raises(UnsupportedVLLMError, match="VLLM_PLUGINS"):
        check_vllm_version(version)


def test_major_minor_reads_release_prefixes() -> None:
    assert (
        major_minor("0.32.0+cpu") == (0, 32) and major_minor("v1.2") == (1, 2) and major_minor("dev") is None
    )


def test_a_wrapper_without_the_op_names_is_refused() -> None:
    from types import ModuleType

    with pytest.raises(RuntimeError, match="has no bgmv_expand"):
        patch.apply(ModuleType("not_punica_cpu"))


def test_vllm_discovers_the_plugin_and_vllm_plugins_can_exclude_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from vllm.plugins import DEFAULT_PLUGINS_GROUP, load_plugins_by_group

    monkeypatch.delenv("VLLM_PLUGINS", raising=False)
    assert load_plugins_by_group(DEFAULT_PLUGINS_GROUP)["lorag_cpu_lora"] is register
    monkeypatch.setenv("VLLM_PLUGINS", "")  # parsed as [""]: no general plugin is loaded
    assert "lorag_cpu_lora" not in load_plugins_by_group(DEFAULT_PLUGINS_GROUP)
    monkeypatch.setenv("VLLM_PLUGINS", "lora_filesystem_resolver")
    assert "lorag_cpu_lora" not in load_plugins_by_group(DEFAULT_PLUGINS_GROUP)


def test_the_patch_replaces_add_lora_linear_and_restore_puts_it_back(punica_cpu) -> None:  # type: ignore[no-untyped-def]
    original = punica_cpu.PunicaWrapperCPU.add_lora_linear
    assert patch.apply(punica_cpu) and patch.is_applied(punica_cpu)
    assert punica_cpu.PunicaWrapperCPU.add_lora_linear.__wrapped__ is original
    assert patch.restore(punica_cpu) and not patch.is_applied(punica_cpu)
    assert punica_cpu.PunicaWrapperCPU.add_lora_linear is original
