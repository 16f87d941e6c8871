"""The fused `PunicaWrapperCPU.add_lora_linear`, and the per-wrapper state it keeps between calls.

Every LoRA linear layer of a forward (4 per decoder layer) sees the same batch, so the batch's slot
segments are worked out once per step and reused: they are cached on the wrapper, keyed on the version
counter of the buffer vLLM copies each step's token slots into (`update_metadata` writes it in place).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from cpu_lora.fused import WeightCache, lora_linear
from cpu_lora.ops import Segments

STATE = "_lorag_cpu_lora_state"
"""Attribute of a `PunicaWrapperCPU` holding its `FusedState`, made on first use."""

FUSED = "_lorag_cpu_lora_fused"
"""Attribute marking the fused method, so the patch can tell whether it is bound."""


class FusedState:
    """What one wrapper remembers across calls: its batch's segments and its layers' derived weights."""

    def __init__(self) -> None:
        self.weights = WeightCache()
        self._segments_key: tuple[int, int] | None = None
        self._segments: Segments = ((), ())

    def segments(self, wrapper: Any) -> Segments:
        """The wrapper's per-token slots as (slot, length) runs, recomputed only when they were rewritten.

        Both of vLLM's paths read the same slots: the prefill metadata is `compute_meta` over
        `token_lora_indices`, which the decode path uses directly.
        """
        try:  # `token_lora_indices` is `_token_lora_indices[: indices_len[0]]`: no slice on a hit
            key: tuple[int, int] | None = (wrapper._token_lora_indices._version, wrapper.indices_len[0])
        except RuntimeError:  # an inference tensor has no version counter: no caching
            key = None
        if key is None or key != self._segments_key:
            indices: torch.Tensor = wrapper.token_lora_indices
            slots, counts = torch.unique_consecutive(indices, return_counts=True)
            self._segments = (tuple(slots.tolist()), tuple(counts.tolist()))
            self._segments_key = key
        return self._segments


def state_of(wrapper: Any) -> FusedState:
    """The wrapper's `FusedState`, made on first use (vLLM builds the wrapper; we do not hook its init)."""
    state: FusedState | None = getattr(wrapper, STATE, None)
    if state is None:
        state = FusedState()
        setattr(wrapper, STATE, state)
    return state


def fused_add_lora_linear(original: Callable[..., None]) -> Callable[..., None]:
    """A replacement for `PunicaWrapperCPU.add_lora_linear` that falls back to `original` where it must."""

    def add_lora_linear(
        self: Any,
        y: torch.Tensor,
        x: torch.Tensor,
        lora_a_stacked: tuple[torch.Tensor, ...],
        lora_b_stacked: tuple[torch.Tensor, ...],
        scale: float,
        output_slices: tuple[int, ...],
        *,
        buffer: tuple[torch.Tensor, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        """`y += x @ A_i.T @ B_i.T * scale` per output slice i and token slot, one grouped pass for all."""
        assert len(lora_a_stacked) == len(lora_b_stacked) == len(output_slices)
        # A caller-provided buffer or extra arguments: not a call vLLM's CPU path makes; keep its semantics.
        if buffer is None and not kwargs:
            state = state_of(self)
            segments = state.segments(self)
            if lora_linear(
                y, x, lora_a_stacked, lora_b_stacked, scale, output_slices, segments, state.weights
            ):
                return
        original(self, y, x, lora_a_stacked, lora_b_stacked, scale, output_slices, buffer=buffer, **kwargs)

    setattr(add_lora_linear, FUSED, True)
    add_lora_linear.__wrapped__ = original  # type: ignore[attr-defined]
    return add_lora_linear
