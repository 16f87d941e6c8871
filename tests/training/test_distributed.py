"""The recipe under `accelerate launch` with two CPU processes takes the steps one process takes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.training.conftest import chat, write_jsonl
from training.recipe import TrainConfig, train
from training.registry import AdapterRegistry

QA = [(f"Question number {i} about Lumora?", f"Answer {i}: " + "fox " * (i % 4 + 1)) for i in range(7)]


@pytest.mark.slow
def test_two_cpu_processes_train_the_same_adapter_as_one(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    data = write_jsonl(tmp_path / "train.jsonl", [chat(q, a) for q, a in QA])
    # No dropout: each process draws its own masks, so only then are the two runs comparable exactly.
    fields = dict(output_name="tiny", base_model=str(tiny_model_dir), data_files=[str(data)], lora_r=4,
                  lora_alpha=8, lora_dropout=0.0, max_steps=3, batch_size=3, max_length=64,
                  dtype="float32", packing=True, checkpoint_every=2)  # fmt: skip
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(fields))
    env = {**os.environ, "LORAG_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env["LORAG_CHAT_MODEL"] = str(tiny_model_dir)  # the server this adapter is for serves the tiny model
    env.pop("LORAG_CONFIG", None)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu"]
    command = [*launch, "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    result = subprocess.run(
        [*command, "-m", "cli", "train", "--config", str(config_file)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    registry = AdapterRegistry(tmp_path / "home" / "adapters")
    assert registry.versions("tiny") == ["v1"]  # registered once, by the main process (a candidate)
    two = registry.get("tiny", "v1")
    assert two.manifest["metrics"]["steps"] == 3

    alone = train(TrainConfig(**fields), tmp_path / "one", tmp_path / "cache", progress=False)
    a, b = (load_file(v.path / "adapter_model.safetensors") for v in (alone, two))
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
