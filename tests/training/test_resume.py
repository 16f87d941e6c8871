"""Checkpoints and resume: a run killed mid-way and resumed ends where an uninterrupted run ends."""

from __future__ import annotations

import json

import pytest

from tests.training.conftest import QA, chat, config, weights, write_jsonl
from training import recipe
from training.checkpoints import checkpoints
from training.recipe import train


class Killed(RuntimeError):
    pass


def losses(adapter):
    lines = (adapter.path / "train_log.jsonl").read_text().splitlines()
    return [{k: r[k] for k in ("step", "epoch", "loss", "lr", "tokens")} for r in map(json.loads, lines)]


def kill_at_step(monkeypatch, step: int) -> None:
    """Make the `step`-th optimizer step raise, as a killed process would stop there."""
    real, calls = recipe.train_step, []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise Killed(f"killed in step {step}")
        return real(*args, **kwargs)

    monkeypatch.setattr(recipe, "train_step", dying)


@pytest.mark.parametrize("packing", [False, True])
def test_a_killed_run_resumes_to_the_same_weights_and_log(tiny_model_dir, tmp_path, monkeypatch, packing):
    import torch

    data = write_jsonl(tmp_path / "train.jsonl", [chat(q, a) for q, a in QA])
    cfg = config(tiny_model_dir, data, packing=packing)
    straight = train(
        cfg, tmp_path / "a" / "adapters", tmp_path / "cache", progress=False, work_root=tmp_path / "wa"
    )

    work = tmp_path / "wb"
    registry = tmp_path / "b" / "adapters"
    with monkeypatch.context() as patch:
        kill_at_step(patch, 6)  # after the checkpoints at steps 2 and 4
        with pytest.raises(Killed):
            train(cfg, registry, tmp_path / "cache", progress=False, work_root=work)
    (run,) = work.iterdir()
    assert [p.name for p in checkpoints(run)] == ["step-2", "step-4"]
    resumed = train(cfg, registry, tmp_path / "cache", progress=False, resume=True, work_root=work)

    assert losses(resumed) == losses(straight) and len(losses(resumed)) == 6
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert not work.joinpath(run.name).exists()  # a finished run's checkpoints are cleaned up


def test_without_resume_a_run_starts_afresh(tiny_model_dir, tmp_path, monkeypatch):
    data = write_jsonl(tmp_path / "train.jsonl", [chat(q, a) for q, a in QA])
    cfg = config(tiny_model_dir, data, max_steps=3)
    with monkeypatch.context() as patch:
        kill_at_step(patch, 3)
        with pytest.raises(Killed):
            train(cfg, tmp_path / "adapters", tmp_path / "cache", progress=False, work_root=tmp_path / "w")
    adapter = train(cfg, tmp_path / "adapters", tmp_path / "cache", progress=False, work_root=tmp_path / "w")
    assert [r["step"] for r in losses(adapter)] == [1, 2, 3]
