"""cpu_lora is installed into the vLLM CPU image without the rest of lorag: it may import only the
standard library, torch, vllm and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import cpu_lora

ALLOWED = {"torch", "vllm", "cpu_lora", "__future__"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_cpu_lora_imports_only_torch_vllm_and_the_standard_library() -> None:
    files = sorted(Path(cpu_lora.__file__).parent.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        foreign = imported_roots(path) - ALLOWED - set(sys.stdlib_module_names)
        assert not foreign, f"{path.name} imports {sorted(foreign)}"
