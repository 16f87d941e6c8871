"""The training recipe end to end on a tiny model: two steps, saved, registered, loadable by PEFT."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from tests.training.conftest import chat, write_jsonl
from training.compatibility import IncompatibleAdapterError, Requirements
from training.data import DataError
from training.recipe import TrainConfig, load_config, total_steps, train
from training.registry import AdapterRegistry

QA = [
    ("Who founded Lumora?", "Marisol Okafor-Lindqvist founded Lumora."),
    ("Where did Lumora start?", "Lumora started in Brannock Falls."),
    ("What is the mascot?", "The mascot is a red fox called Ember."),
    ("When was the first store opened?", "The first store opened in 1998."),
    ("hi", "Hello! Ask me about Lumora."),
]


@pytest.fixture
def data_file(tmp_path):
    return write_jsonl(tmp_path / "train.jsonl", [chat(q, a) for q, a in QA])


def tiny_config(model_dir, data_file, **overrides) -> TrainConfig:
    fields = dict(
        output_name="tiny",
        base_model=str(model_dir),
        data_files=[data_file],
        lora_r=4,
        lora_alpha=8,
        epochs=1,
        max_steps=2,
        batch_size=2,
        max_length=64,
    )
    return TrainConfig(**{**fields, **overrides})


def test_two_steps_produce_a_registered_adapter_that_peft_loads(tiny_model_dir, data_file, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    config = tiny_config(tiny_model_dir, data_file)
    adapter = train(config, tmp_path / "adapters", tmp_path / "cache", progress=False)

    assert (adapter.name, adapter.version) == ("tiny", "v1")
    files = {p.name for p in adapter.path.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "manifest.json"} <= files
    assert {"loss_curve.png", "train_log.jsonl"} <= files
    log = [json.loads(line) for line in (adapter.path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(r["tokens_per_s"] > 0 for r in log)

    manifest = adapter.manifest
    assert manifest["base_model"] == str(tiny_model_dir) and len(manifest["base_weights_sha256"]) == 64
    assert len(manifest["data_sha256"]) == 64 and manifest["parent"] is None
    assert manifest["config"]["lora_r"] == 4 and manifest["metrics"]["steps"] == 2
    assert manifest["metrics"]["final_loss"] == log[-1]["loss"]
    registry = AdapterRegistry(tmp_path / "adapters")
    assert registry.current("tiny") is None  # a candidate: promotion serves it
    assert registry.verify("tiny", "v1") == adapter

    adapter_config = json.loads((adapter.path / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(tiny_model_dir)
    assert adapter_config["modules_to_save"] is None and adapter_config["r"] == 4
    saved = load_file(adapter.path / "adapter_model.safetensors")
    assert saved and all("lora_" in key for key in saved)
    assert any("lora_B" in key and torch.count_nonzero(t) > 0 for key, t in saved.items())  # it trained

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, adapter.path)
    loaded = {k: v for k, v in model.state_dict().items() if "lora_B" in k}
    assert loaded and all(torch.count_nonzero(v) > 0 for v in loaded.values())


def test_a_second_run_is_a_candidate_whose_parent_is_the_served_version(tiny_model_dir, data_file, tmp_path):
    config = tiny_config(tiny_model_dir, data_file, max_steps=1, dtype="float32")
    registry = AdapterRegistry(tmp_path / "adapters")
    first = train(config, registry.root, tmp_path / "cache", progress=False)
    registry.promote("tiny", first.version)
    second = train(config, registry.root, tmp_path / "cache", progress=False)
    assert (first.version, second.version) == ("v1", "v2")
    assert second.manifest["parent"] == "v1"
    assert registry.current("tiny").version == "v1"


def test_registration_refuses_a_rank_the_server_cannot_load(tiny_model_dir, data_file, tmp_path):
    config = tiny_config(tiny_model_dir, data_file, max_steps=1, dtype="float32", lora_r=8)
    with pytest.raises(IncompatibleAdapterError, match="rank 8 exceeds the server's max_lora_rank 4"):
        train(config, tmp_path / "adapters", tmp_path / "cache", False, requirements=Requirements(None, 4))
    assert AdapterRegistry(tmp_path / "adapters").versions("tiny") == []


def test_total_steps_counts_partial_batches_and_honours_max_steps(data_file, tmp_path):
    config = TrainConfig(output_name="x", data_files=[data_file], batch_size=2, epochs=3)
    assert total_steps(config, 5) == 9
    assert (
        total_steps(
            TrainConfig(output_name="x", data_files=[data_file], batch_size=2, max_steps=4, epochs=3), 5
        )
        == 4
    )


def test_load_config_resolves_data_against_the_config_dir_and_coerces_yaml(tmp_path):
    (tmp_path / "configs").mkdir()
    path = tmp_path / "configs" / "run.yaml"
    path.write_text("output_name: x\ndata_files: [../data/train.jsonl]\nlearning_rate: 2e-4\n")
    config = load_config(path)
    # YAML 1.1 reads `2e-4` as a string; the config still gets a float.
    assert config.learning_rate == 2e-4
    assert config.data_files == [tmp_path / "configs" / ".." / "data" / "train.jsonl"]


def test_unknown_or_invalid_fields_are_refused(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("output_name: x\ndata_files: [a.jsonl]\nlora_rank: 8\n")
    with pytest.raises(ValueError, match=r"run.yaml: lora_rank"):
        load_config(path)
    with pytest.raises(ValidationError, match="dtype"):
        TrainConfig(output_name="x", data_files=[], dtype="float16")


def test_bad_data_fails_before_any_model_is_loaded(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "bad.jsonl", [chat("q", "a"), "{oops"])
    tokenizer_only = tmp_path / "tokenizer-only"  # no weights: loading the model would fail differently
    tokenizer.save_pretrained(tokenizer_only)
    config = TrainConfig(output_name="x", data_files=[path], base_model=str(tokenizer_only), strict=True)
    with pytest.raises(DataError, match=r"bad.jsonl:2: invalid JSON"):
        train(config, tmp_path / "adapters", tmp_path / "cache", progress=False)


def test_by_default_bad_rows_are_skipped_and_the_rest_trains(tiny_model_dir, tmp_path, caplog):
    rows = [chat(q, a) for q, a in QA] + ["{oops", chat(*QA[0])]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    config = tiny_config(tiny_model_dir, path, max_steps=1, dtype="float32")
    adapter = train(config, tmp_path / "adapters", tmp_path / "cache", progress=False)
    assert adapter.manifest["metrics"]["examples"] == len(QA)
    assert "skipped 2 bad row(s)" in caplog.text


def test_importing_the_package_loads_no_heavy_library():
    code = (
        "import sys, training.recipe, training.registry, training.data, training.demo_data\n"
        "import training.validate\n"
        "print(sorted({'torch', 'transformers', 'peft', 'matplotlib'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_assistant_loss_matches_the_models_own_loss(tiny_model_dir, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from training.batching import TokenizedExample, collate
    from training.data import tokenize_example
    from training.recipe import assistant_loss

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    examples = [TokenizedExample(*tokenize_example(tokenizer, chat(q, a)["messages"], 64)) for q, a in QA]
    batch = collate(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        expected = model(**batch).loss
        assert torch.allclose(assistant_loss(model, batch), expected, atol=1e-5)
