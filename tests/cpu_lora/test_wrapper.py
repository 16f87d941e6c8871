"""vLLM's own `PunicaWrapperCPU`, fed a mixed base/adapter batch, with and without the patch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from cpu_lora import patch

MAX_LORAS, RANK, HIDDEN, VOCAB = 2, 4, 16, 40
# Three requests: adapter id 1 (3 tokens), the base model (2 tokens), adapter id 2 (2 tokens).
TOKENS = (1, 1, 1, 0, 0, 2, 2)
PROMPTS = (1, 0, 2)  # one sampled row per request
BASE_TOKENS, BASE_PROMPT = [3, 4], 1


@pytest.fixture(params=[True, False], ids=["grouped", "vllm-cpu"])
def grouped(request) -> Iterator[bool]:  # type: ignore[no-untyped-def]
    """Run once with the grouped ops bound in `punica_cpu`, once with vLLM's own."""
    module = patch.punica_cpu_module()
    patch.restore(module)
    if request.param:
        patch.apply(module)
    yield request.param
    patch.restore(module)


def wrapper():  # type: ignore[no-untyped-def]
    """A `PunicaWrapperCPU` set up as vLLM V1 does on CPU (`is_prefill=True`); adapters 1, 2 in slots 0, 1."""
    from vllm.lora.layers import LoRAMapping
    from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

    punica = PunicaWrapperCPU(max_num_batched_tokens=16, max_batches=4, device="cpu")
    punica.update_metadata(LoRAMapping(TOKENS, PROMPTS, is_prefill=True), [1, 2], MAX_LORAS, VOCAB)
    return punica


def adapters(out: int, inp: int, seed: int) -> torch.Tensor:
    return torch.randn(MAX_LORAS, 1, out, inp, generator=torch.Generator().manual_seed(seed))


def test_add_lora_linear_leaves_base_rows_alone(grouped: bool) -> None:
    slices = (HIDDEN, 8)  # a merged projection with two output slices, like qkv or gate_up
    lora_a = tuple(adapters(RANK, HIDDEN, seed) for seed in (1, 2))
    lora_b = tuple(adapters(size, RANK, seed) for size, seed in zip(slices, (3, 4), strict=True))
    x, y = torch.randn(len(TOKENS), HIDDEN), torch.randn(len(TOKENS), sum(slices))
    before = y.clone()
    wrapper().add_lora_linear(y, x, lora_a, lora_b, 1.0, slices)
    assert torch.equal(y[BASE_TOKENS], before[BASE_TOKENS]) is grouped
    first = x[0] @ lora_a[0][0, 0].T @ lora_b[0][0, 0].T  # token 0, adapter slot 0, first slice
    torch.testing.assert_close(y[0, :HIDDEN], before[0, :HIDDEN] + first)


def test_add_lora_logits_leaves_the_base_requests_logits_alone(grouped: bool) -> None:
    lora_a, lora_b = adapters(RANK, HIDDEN, 5), adapters(VOCAB, RANK, 6)
    x, logits = torch.randn(len(PROMPTS), HIDDEN), torch.randn(len(PROMPTS), VOCAB)
    before = logits.clone()
    wrapper().add_lora_logits(logits, x, lora_a, lora_b, 1.0)
    assert torch.equal(logits[BASE_PROMPT], before[BASE_PROMPT]) is grouped
    last = x[2] @ lora_a[1, 0].T @ lora_b[1, 0].T  # the third request uses slot 1
    torch.testing.assert_close(logits[2], before[2] + last)


def test_add_lora_embedding_leaves_base_rows_alone(grouped: bool) -> None:
    lora_b = adapters(HIDDEN, RANK, 7)
    x, y = torch.randn(len(TOKENS), RANK), torch.randn(len(TOKENS), HIDDEN)
    before = y.clone()
    wrapper().add_lora_embedding(y, x, lora_b, add_inputs=True)
    assert torch.equal(y[BASE_TOKENS], before[BASE_TOKENS]) is grouped


@pytest.mark.parametrize("is_prefill", [True, False], ids=["prefill", "decode"])
def test_the_fused_pass_matches_the_per_slice_path_step_after_step(is_prefill: bool) -> None:
    """The fused `add_lora_linear` against the original method running the grouped ops, while the batch's
    slots change between steps (its cached segments must follow `update_metadata`)."""
    from vllm.lora.layers import LoRAMapping
    from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

    module = patch.punica_cpu_module()
    patch.restore(module)
    patch.apply(module)
    try:
        per_slice = PunicaWrapperCPU.add_lora_linear.__wrapped__  # type: ignore[attr-defined]
        punica = PunicaWrapperCPU(max_num_batched_tokens=16, max_batches=8, device="cpu")
        slices = (HIDDEN, 8, 8)
        lora_a = tuple(adapters(RANK, HIDDEN, seed) for seed in (1, 2, 3))
        lora_b = tuple(adapters(size, RANK, seed) for size, seed in zip(slices, (4, 5, 6), strict=True))
        for tokens in (TOKENS, (2, 0, 1, 1, 0, 2, 2), (0,) * 7, (2,) * 7, TOKENS):
            punica.update_metadata(
                LoRAMapping(tokens, PROMPTS, is_prefill=is_prefill), [1, 2], MAX_LORAS, VOCAB
            )
            x, y = torch.randn(len(tokens), HIDDEN), torch.randn(len(tokens), sum(slices))
            fused_y, expected = y.clone(), y.clone()
            punica.add_lora_linear(fused_y, x, lora_a, lora_b, 1.0, slices)
            per_slice(punica, expected, x, lora_a, lora_b, 1.0, slices)
            torch.testing.assert_close(fused_y, expected)
            base = [t for t, token in enumerate(tokens) if token == 0]
            assert torch.equal(fused_y[base], y[base])
    finally:
        patch.restore(module)


def test_a_caller_buffer_takes_the_per_slice_path_with_the_same_result() -> None:
    module = patch.punica_cpu_module()
    patch.restore(module)
    patch.apply(module)
    try:
        slices = (HIDDEN, 8)
        lora_a = tuple(adapters(RANK, HIDDEN, seed) for seed in (1, 2))
        lora_b = tuple(adapters(size, RANK, seed) for size, seed in zip(slices, (3, 4), strict=True))
        x, y = torch.randn(len(TOKENS), HIDDEN), torch.randn(len(TOKENS), sum(slices))
        fused_y, buffered = y.clone(), y.clone()
        punica = wrapper()
        punica.add_lora_linear(fused_y, x, lora_a, lora_b, 1.0, slices)
        buffer = tuple(torch.zeros(len(TOKENS), RANK) for _ in slices)
        punica.add_lora_linear(buffered, x, lora_a, lora_b, 1.0, slices, buffer=buffer)
        assert buffer[0].abs().sum() > 0  # the per-slice path used it
        torch.testing.assert_close(fused_y, buffered)
        assert torch.equal(buffered[BASE_TOKENS], y[BASE_TOKENS])
    finally:
        patch.restore(module)
