"""Micro-batches: cutting a step into several forward/backward passes changes memory, not the update."""

from __future__ import annotations

import json

import pytest

from tests.training.conftest import QA, chat, config, weights, write_jsonl
from training import recipe
from training.recipe import train


def step_losses(adapter):
    lines = (adapter.path / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


@pytest.mark.parametrize("packing", [False, True])
def test_micro_batches_give_the_same_weights_as_whole_steps(tiny_model_dir, tmp_path, monkeypatch, packing):
    import torch

    data = write_jsonl(tmp_path / "train.jsonl", [chat(q, a) for q, a in QA])
    # No dropout: its masks are drawn per pass, so they differ when a step is cut.
    whole = config(tiny_model_dir, data, packing=packing, lora_dropout=0.0)
    passes: list[int] = []
    real = recipe.token_loss_sum

    def counting(model, batch):  # type: ignore[no-untyped-def]
        passes.append(int(batch["input_ids"].shape[0]))
        return real(model, batch)

    a = train(whole, tmp_path / "a", tmp_path / "cache", progress=False, work_root=tmp_path / "wa")
    monkeypatch.setattr(recipe, "token_loss_sum", counting)
    cut = config(tiny_model_dir, data, packing=packing, lora_dropout=0.0, micro_batch_size=1)
    b = train(cut, tmp_path / "b", tmp_path / "cache", progress=False, work_root=tmp_path / "wb")

    assert len(passes) > cut.max_steps and set(passes) == {1}  # every step was cut into single rows
    assert step_losses(b) == pytest.approx(step_losses(a), rel=1e-5)
    wa, wb = weights(a), weights(b)
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=1e-6)
