"""An installed lorag must work, not only the source tree: every package is packaged (and copied into the
images that install lorag), and a non-editable install runs `lorag` and finds its shipped data."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGED = set(PYPROJECT["tool"]["setuptools"]["packages"])
DOCKERFILES = sorted((ROOT / "deploy" / "docker").glob("Dockerfile*"))


def source_packages() -> set[str]:
    """Every importable package of the source tree (dotted names), tests and hidden folders aside."""
    found = set()
    for init in ROOT.glob("*/**/__init__.py"):
        parts = init.parent.relative_to(ROOT).parts
        if parts[0] in ("tests", "build", "dist") or any(p.startswith(".") for p in parts):
            continue
        if ".egg-info" in parts[0] or "site-packages" in parts:
            continue
        found.add(".".join(parts))
    return found


def test_every_package_is_packaged() -> None:
    missing = source_packages() - PACKAGED
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    assert not PACKAGED - source_packages(), "pyproject.toml lists a package that does not exist"


def test_the_layers_contract_names_every_top_level_package() -> None:
    contract = PYPROJECT["tool"]["importlinter"]
    top_level = {name for name in PACKAGED if "." not in name}
    assert set(contract["root_packages"]) == top_level


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_images_that_install_lorag_copy_every_top_level_package(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    if not re.search(r"pip install\b[^\n]*\s\"?\.", text):
        pytest.skip("this image does not install lorag from the source tree")
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, flags=re.MULTILINE))
    missing = {name for name in PACKAGED if "." not in name} - copied
    assert not missing, f"{dockerfile.name} does not COPY {sorted(missing)}"


@pytest.mark.slow
def test_an_installed_lorag_runs_and_finds_its_data(tmp_path: Path) -> None:
    # From a copy: setuptools writes build/ and *.egg-info into the tree it builds.
    source, target = tmp_path / "source", tmp_path / "site"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(source)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(target), HF_HUB_OFFLINE="1")
    probe = (
        "import cli, core, retrieval, training, serving, eval, bench, pathlib\n"
        f"target = pathlib.Path({str(target)!r})\n"
        "for module in (cli, core, retrieval, training, serving, eval, bench):\n"
        "    assert pathlib.Path(module.__file__).is_relative_to(target), module.__file__\n"
        "from retrieval.build import DEMO_CORPUS\n"
        "from eval.datasets import DEMO_DATASET\n"
        "from training.demo_adapter import DEMO_ADAPTER_DIR as SHIPPED\n"
        "assert DEMO_CORPUS.is_relative_to(target) and any(DEMO_CORPUS.rglob('*.md')), DEMO_CORPUS\n"
        "assert DEMO_DATASET.is_relative_to(target) and DEMO_DATASET.is_file(), DEMO_DATASET\n"
        "assert (SHIPPED / 'adapter_model.safetensors').is_file(), SHIPPED\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, env=env, cwd=tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "--help"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "retrain" in done.stdout and "bench" in done.stdout
