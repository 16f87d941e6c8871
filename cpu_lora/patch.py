"""Rebinding the LoRA op names in `vllm.lora.punica_wrapper.punica_cpu` to the grouped ones.

`punica_cpu` imports the ops by name (`from vllm.lora.ops.torch_ops import bgmv_expand, ...`), so patching
`vllm.lora.ops.torch_ops` would not reach it: the names are rebound in the wrapper module's globals, which
every `PunicaWrapperCPU` method (linear layers, embeddings, `add_lora_logits`, `apply_lora_full_linear`)
looks up at call time. It is the only vLLM module importing those ops, so the originals stay available in
`vllm.lora.ops.torch_ops` (the micro-benchmark compares against them).

`PunicaWrapperCPU.add_lora_linear` is replaced too, by the fused pass of `cpu_lora.wrapper` (all output
slices of a layer at once), which falls back to the original method, running the grouped ops, for calls
it does not cover.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from cpu_lora.ops import OPS
from cpu_lora.wrapper import FUSED, fused_add_lora_linear

_ORIGINALS = "_lorag_cpu_lora_originals"
"""Attribute of the patched module holding the ops it had before, for `restore`."""

WRAPPER = "PunicaWrapperCPU"
"""The wrapper class whose `add_lora_linear` is replaced by the fused one."""
METHOD = "add_lora_linear"
"""The method replaced."""


def punica_cpu_module() -> ModuleType:
    """`vllm.lora.punica_wrapper.punica_cpu`, imported."""
    from vllm.lora.punica_wrapper import punica_cpu

    return punica_cpu


def is_applied(module: ModuleType | None = None) -> bool:
    """Whether the grouped ops and the fused `add_lora_linear` are bound in `module` (default: punica_cpu)."""
    module = module or punica_cpu_module()
    method = getattr(getattr(module, WRAPPER, None), METHOD, None)
    return all(getattr(module, name, None) is op for name, op in OPS.items()) and hasattr(method, FUSED)


def apply(module: ModuleType | None = None) -> bool:
    """Bind the grouped ops and the fused `add_lora_linear` in `module` (default: `punica_cpu`); False if
    they already were.

    Raises RuntimeError if the module lacks one of the op names or the wrapper's method: a vLLM whose
    wrapper no longer calls them would otherwise run unpatched without anyone noticing.
    """
    module = module or punica_cpu_module()
    missing = [name for name in OPS if not callable(getattr(module, name, None))]
    if not callable(getattr(getattr(module, WRAPPER, None), METHOD, None)):
        missing.append(f"{WRAPPER}.{METHOD}")
    if missing:
        raise RuntimeError(f"lorag cpu_lora: {module.__name__} has no {', '.join(missing)}; cannot patch it")
    if is_applied(module):
        return False
    originals: dict[str, Any] = {name: getattr(module, name) for name in OPS}
    setattr(module, _ORIGINALS, originals)
    wrapper = getattr(module, WRAPPER)
    originals[METHOD] = wrapper.__dict__.get(METHOD)  # None: inherited, so restore deletes ours
    for name, op in OPS.items():
        setattr(module, name, op)
    setattr(wrapper, METHOD, fused_add_lora_linear(getattr(wrapper, METHOD)))
    return True


def restore(module: ModuleType | None = None) -> bool:
    """Put back the ops and the method `apply` replaced; False if nothing was patched."""
    module = module or punica_cpu_module()
    originals: dict[str, Any] | None = getattr(module, _ORIGINALS, None)
    if originals is None:
        return False
    method = originals.pop(METHOD, None)
    wrapper = getattr(module, WRAPPER)
    if method is None:
        delattr(wrapper, METHOD)
    else:
        setattr(wrapper, METHOD, method)
    for name, op in originals.items():
        setattr(module, name, op)
    delattr(module, _ORIGINALS)
    return True
