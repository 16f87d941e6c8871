"""`lorag train` through typer's runner: the recipe, `validate` and `data raft`."""

from __future__ import annotations

import json
from types import SimpleNamespace

from typer.testing import CliRunner

from cli import app
from core.settings import ChunkingSettings
from retrieval.snapshots import build_snapshot
from retrieval.sources import load_documents
from tests.retrieval.fakes import HashingEmbedder
from tests.training.conftest import chat, write_jsonl

runner = CliRunner()


def test_train_with_a_config_still_runs_the_recipe(home, tmp_path, monkeypatch):
    calls = []

    def fake_train(config, registry_root, cache_dir, resume=False, work_root=None, requirements=None, **_):
        calls.append((config.output_name, registry_root))
        return SimpleNamespace(served_name="x@v1", path=registry_root / "x" / "v1", name="x", version="v1")

    monkeypatch.setattr("training.recipe.train", fake_train)
    recipe = tmp_path / "x.yaml"
    recipe.write_text("output_name: x\ndata_files: [data.jsonl]\nstrict: true\n")
    result = runner.invoke(app, ["train", "--config", str(recipe)])
    assert result.exit_code == 0, result.output
    assert calls == [("x", home / "adapters")] and "registered x@v1" in result.output


def test_train_alone_asks_for_a_recipe_or_a_subcommand(home):
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 2
    assert "validate" in result.output and "data" in result.output


def test_validate_prints_the_report_and_fails_only_when_strict(home, tmp_path, smol_dir):
    path = write_jsonl(tmp_path / "d.jsonl", [chat("q", "a"), "{oops", chat("q", "a")])
    args = ["train", "validate", str(path), "--base-model", str(smol_dir), "--epochs", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{path}:2: [invalid_json]" in result.output and f"{path}:3: [duplicate]" in result.output
    assert "3 rows, 1 kept, 2 skipped" in result.output and "for 2 epoch(s)" in result.output
    assert runner.invoke(app, [*args, "--strict"]).exit_code == 2  # bad input
    clean = write_jsonl(tmp_path / "ok.jsonl", [chat("q", "a")])
    assert (
        runner.invoke(
            app, ["train", "validate", str(clean), "--strict", "--base-model", str(smol_dir)]
        ).exit_code
        == 0
    )
    too_short = runner.invoke(
        app, ["train", "validate", str(clean), "--max-length", "8", "--base-model", str(smol_dir)]
    )
    assert "[too_long]" in too_short.output


def test_data_raft_writes_examples_from_the_current_index(home, tmp_path, monkeypatch):
    embedder = HashingEmbedder()
    monkeypatch.setattr("retrieval.embedders.load_embedder", lambda name, cache_dir: embedder)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    passages = {
        "tent": "The tent costs 249 dollars.",
        "fox": "The mascot is a fox.",
        "hours": "Open at nine.",
    }
    write_jsonl(corpus / "passages.jsonl", [{"id": k, "title": k, "text": v} for k, v in passages.items()])
    build_snapshot(load_documents(corpus), embedder, ChunkingSettings(), home / "index", progress=False)
    qa = write_jsonl(
        tmp_path / "qa.jsonl",
        [{"question": "What does the tent cost?", "answer": "249 dollars", "gold_sources": ["tent"]}],
    )
    out = tmp_path / "raft.jsonl"
    args = [
        "train",
        "data",
        "raft",
        "--input",
        str(qa),
        "--out",
        str(out),
        "--p-gold",
        "1",
        "--distractors",
        "1",
    ]
    result = runner.invoke(app, [*args, "--k", "3", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "wrote 1 examples" in result.output and "1 with gold" in result.output
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert "passages.jsonl#tent" in row["messages"][0]["content"]


def test_data_raft_without_an_index_is_one_line_of_error(home, tmp_path, monkeypatch):
    monkeypatch.setattr("retrieval.embedders.load_embedder", lambda name, cache_dir: HashingEmbedder())
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"question": "q", "answer": "a", "gold_sources": ["s"]}])
    result = runner.invoke(
        app, ["train", "data", "raft", "--input", str(qa), "--out", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 1 and "error:" in result.output
