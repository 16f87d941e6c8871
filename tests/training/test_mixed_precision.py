"""Mixed precision: with bf16 base weights the LoRA path runs in bf16, while LoRA weights stay float32."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.conftest import QA, chat, config, write_jsonl
from training.batching import collate
from training.recipe import load_model, mixed_precision, precision, token_loss_sum, tokenize_all
from training.validate import load_training_examples


def test_precision_follows_the_base_dtype_and_the_switch(tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", [chat(q, a) for q, a in QA])
    assert precision(config(tiny_model_dir, data, dtype="bfloat16")) == "bfloat16"
    assert precision(config(tiny_model_dir, data, dtype="bf16", autocast=False)) is None
    assert precision(config(tiny_model_dir, data, dtype="float32")) is None


def test_bf16_lora_path_matches_float32_and_keeps_float32_weights(tiny_model_dir, tmp_path):
    import torch

    data = write_jsonl(tmp_path / "train.jsonl", [chat(q, a) for q, a in QA])
    cfg = config(tiny_model_dir, data, dtype="bfloat16", lora_dropout=0.0)
    tokenizer, model = load_model(cfg, Path(tiny_model_dir))
    for name, param in model.named_parameters():  # a non-zero update, so the LoRA path matters
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    examples = load_training_examples([data], tokenizer, max_length=cfg.max_length, strict=False)
    batch = collate(tokenize_all(tokenizer, examples, cfg.max_length)[:4], tokenizer.pad_token_id)
    lora = [p for n, p in model.named_parameters() if p.requires_grad]

    seen: list = []  # the dtype of what each LoRA A matrix multiplies
    for name, module in model.named_modules():
        if name.endswith("lora_A.default"):
            module.register_forward_hook(lambda mod, args, out: seen.append((args[0].dtype, out.dtype)))

    def loss_and_grads(dtype):  # type: ignore[no-untyped-def]
        model.zero_grad()
        seen.clear()
        with mixed_precision(model, dtype):
            loss = token_loss_sum(model, batch)
        loss.backward()
        return float(loss), [p.grad.clone() for p in lora]

    exact, exact_grads = loss_and_grads(None)
    assert set(seen) == {(torch.float32, torch.float32)}  # PEFT's upcast: float32 copies of every input
    mixed, mixed_grads = loss_and_grads("bfloat16")
    assert set(seen) == {(torch.bfloat16, torch.bfloat16)}
    assert mixed == pytest.approx(exact, rel=0.02)
    assert all(
        p.dtype == torch.float32 and g.dtype == torch.float32 for p, g in zip(lora, mixed_grads, strict=True)
    )
    cosine = torch.nn.functional.cosine_similarity(
        torch.cat([g.flatten() for g in exact_grads]), torch.cat([g.flatten() for g in mixed_grads]), dim=0
    )
    assert cosine > 0.98
    # Outside the context PEFT casts inputs again: a plain forward still works.
    with torch.no_grad():
        assert torch.isfinite(token_loss_sum(model, batch))
