"""`lorag train data from-docs` through the CLI, with a fake OpenAI-compatible teacher on a real socket."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import cli.teacher
from cli import app
from tests.training.docs.conftest import FakeTeacher, write_docs
from training.demo_data import DEMO_DIR
from training.docs.teacher import GenerationParams

runner = CliRunner()


class TeacherServer:
    """`/v1/models` lists `served`; `/v1/chat/completions` answers as `FakeTeacher` (or 500 if `broken`)."""

    def __init__(self, served: str = "base") -> None:
        self.served = served
        self.broken = False
        self.teacher = FakeTeacher()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": server.served, "object": "model"}]})

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if server.broken:
                    self._send(500, {"error": {"message": "down", "type": "server_error"}})
                    return
                params = GenerationParams(request["temperature"], request["max_tokens"], request.get("seed"))
                reply = server.teacher.complete(request["messages"], params)
                self._send(200, {
                    "id": "x", "object": "chat.completion", "created": 0, "model": request["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply}}],
                })  # fmt: skip

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def teacher_server(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TeacherServer]:
    server = TeacherServer()
    monkeypatch.setenv("LORAG_TEACHER__URL", server.url)
    yield server
    server.close()


def from_docs(*args: str) -> Any:
    return runner.invoke(app, ["train", "data", "from-docs", *args], prog_name="lorag")


def test_a_run_writes_the_data_and_a_rerun_calls_nothing(
    teacher_server: TeacherServer, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path / "docs")
    result = from_docs("--docs", str(docs), "--out", "out")
    assert result.exit_code == 0, result.output
    made = len(teacher_server.teacher.calls)
    assert made > 0
    assert f"teacher base@{teacher_server.url}" in result.output
    for name in ("train.jsonl", "eval.jsonl", "pairs.jsonl", "card.json"):
        assert (Path("out") / name).stat().st_size > 0
    assert "check it with: lorag train validate out/train.jsonl" in result.output

    plan = from_docs("--docs", str(docs), "--out", "out", "--dry-run")
    assert plan.exit_code == 0 and "new teacher calls: 0 to 0" in plan.output
    teacher_server.broken = True  # a re-run must not need the teacher at all
    again = from_docs("--docs", str(docs), "--out", "out")
    assert again.exit_code == 0, again.output
    assert len(teacher_server.teacher.calls) == made


def test_the_counterfactual_option_is_recorded_for_the_next_quarter(
    teacher_server: TeacherServer, tmp_path: Path
) -> None:
    from training.docs.card import recorded_options

    docs = write_docs(tmp_path / "docs")
    result = from_docs("--docs", str(docs), "--out", "out", "--counterfactual", "3")
    assert result.exit_code == 0, result.output
    assert recorded_options(Path("out/card.json"))["counterfactual_per_fact"] == 3
    refused = from_docs("--docs", str(docs), "--out", "out", "--counterfactual", "-1")
    assert refused.exit_code == 2 and "--counterfactual" in refused.output


def test_a_failing_teacher_is_one_line_and_keeps_the_earlier_output(
    teacher_server: TeacherServer, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path / "docs")
    assert from_docs("--docs", str(docs), "--out", "out").exit_code == 0
    before = Path("out/train.jsonl").read_text()
    (docs / "new.md").write_text("# New\n\nThe boathouse cat of the club is called Winch.\n")
    teacher_server.broken = True
    result = from_docs("--docs", str(docs), "--out", "out")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "teacher" in errors[0] and "Traceback" not in result.output
    assert Path("out/train.jsonl").read_text() == before


def test_the_shipped_handbook_is_rebuilt_from_its_cache_without_a_teacher(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committed demo data was made with the default teacher settings: no server is reached or started."""
    shipped = DEMO_DIR / "from_docs"
    out = Path("from_docs")
    out.mkdir()
    shutil.copy(shipped / "teacher-cache.sqlite", out / "teacher-cache.sqlite")

    def no_teacher(*args: object, **kwargs: object) -> None:
        raise AssertionError("no teacher should be opened")

    monkeypatch.setattr(cli.teacher, "open_cli_teacher", no_teacher)
    result = from_docs("--docs", str(DEMO_DIR / "handbook"), "--out", str(out), "--eval-share", "0.25")
    assert result.exit_code == 0, result.output
    for name in ("train.jsonl", "eval.jsonl", "pairs.jsonl"):
        assert (out / name).read_text() == (shipped / name).read_text(), name


def test_an_empty_folder_is_bad_input(home: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = from_docs("--docs", str(tmp_path / "empty"), "--out", "out")
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert not Path("out").exists() or not any(Path("out").iterdir())


def test_an_unreachable_remote_teacher_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LORAG_TEACHER__URL", "http://teacher.invalid:9/v1")
    result = from_docs("--docs", str(write_docs(tmp_path / "docs")), "--out", "out")
    assert result.exit_code == 1
    assert "no answer from teacher.url http://teacher.invalid:9/v1" in result.stderr


def test_a_server_without_the_teacher_model_is_refused(teacher_server: TeacherServer, tmp_path: Path) -> None:
    teacher_server.served = "something-else"
    result = from_docs("--docs", str(write_docs(tmp_path / "docs")), "--out", "out")
    assert result.exit_code == 1 and "does not serve teacher.model 'base'" in result.stderr


def test_serves_model_tells_nothing_there_from_another_model(teacher_server: TeacherServer) -> None:
    assert cli.teacher.serves_model(teacher_server.url, "base", None) is True
    assert cli.teacher.serves_model(teacher_server.url, "big", None) is False
    teacher_server.close()
    assert cli.teacher.serves_model(teacher_server.url, "base", None) is None
    assert cli.teacher.is_local(teacher_server.url) and not cli.teacher.is_local("https://api.openai.com/v1")


def recipe(path: Path, model_dir: Path, data: Path) -> Path:
    """A tiny recipe that reads `data` (a few steps on the tiny model: the pipeline, not the quality)."""
    path.write_text(
        json.dumps(
            {
                "output_name": "club",
                "base_model": str(model_dir),
                "data_files": [str(data)],
                "lora_r": 4,
                "lora_alpha": 8,
                "max_steps": 2,
                "batch_size": 4,
                "max_length": 128,
                "dtype": "float32",
            }
        )  # fmt: skip
    )
    return path


def gated_on(candidate_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (candidate_dir / "gate-eval.jsonl").read_text().splitlines()]


def test_retrain_from_docs_keeps_its_gate_set_and_regenerates_only_what_changed(
    teacher_server: TeacherServer, tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    import eval.promotion
    from eval.datasets import DEMO_DATASET
    from training.registry import AdapterRegistry

    monkeypatch.setenv("LORAG_CHAT_MODEL", str(tiny_model_dir))
    docs = write_docs(tmp_path / "docs")
    config = recipe(tmp_path / "club.yaml", tiny_model_dir, tmp_path / "data" / "train.jsonl")
    first = runner.invoke(app, ["retrain", "--config", str(config), "--docs", str(docs)], prog_name="lorag")
    assert first.exit_code == 0, first.output
    registry = AdapterRegistry(Path("home").resolve() / "adapters")
    v1 = registry.current("club")
    assert v1 is not None and v1.version == "v1"  # the first version: nothing to gate against
    kept = v1.manifest["gate_eval"]
    assert kept["sha256"] == hashlib.sha256((v1.path / "gate-eval.jsonl").read_bytes()).hexdigest()
    new_items = [json.loads(line) for line in (tmp_path / "data" / "eval.jsonl").read_text().splitlines()]
    demo_items = DEMO_DATASET.read_text().splitlines()
    assert new_items and kept["questions"] == len(demo_items) + len(new_items) == len(gated_on(v1.path))
    trained_on = (tmp_path / "data" / "train.jsonl").read_text()
    assert not any(item["question"] in trained_on for item in new_items)  # held out by fact
    calls = len(teacher_server.teacher.calls)

    # Next quarter one page changed: only its chunks reach the teacher, and the gate runs on v1's set
    # joined with the new eval set, less the items whose source chunk changed.
    (docs / "people.md").write_text(DOCS_PEOPLE_CHANGED, encoding="utf-8")
    seen: dict[str, Any] = {}

    def gate(settings: object, name: str, version: str, **options: Any) -> eval.promotion.Promotion:
        seen.update(options, version=version)
        return eval.promotion.Promotion(registry.promote(name, version), "v1", None)

    monkeypatch.setattr(eval.promotion, "promote_with_gate", gate)
    second = runner.invoke(app, ["retrain", "--config", str(config), "--docs", str(docs)], prog_name="lorag")
    assert second.exit_code == 0, second.output
    assert 0 < len(teacher_server.teacher.calls) - calls < calls
    v2 = registry.get("club", seen["version"])
    assert seen["dataset"] == v2.path / "gate-eval.jsonl"
    card = json.loads((tmp_path / "data" / "card.json").read_text())
    retired = {item["id"] for item in card["retired_eval"]}
    union = gated_on(v2.path)
    questions = {row["question"] for row in union}
    assert {row["question"] for row in gated_on(v1.path) if row.get("id") not in retired} <= questions
    assert not retired & {row.get("id") for row in union}
    assert v2.manifest["gate_eval"]["from"][0]["path"] == str(v1.path / "gate-eval.jsonl")


DOCS_PEOPLE_CHANGED = """# People

The head coach of the Harbour Rowing Club is Ilse Varga. She trains the racing crews on weekday evenings.

The club mascot is a grey seal named Bollard.
"""


def test_retrain_from_docs_refuses_a_recipe_that_does_not_read_the_generated_data(
    home: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = recipe(tmp_path / "club.yaml", tiny_model_dir, tmp_path / "elsewhere.jsonl")
    args = ["retrain", "--config", str(config), "--docs", str(write_docs(tmp_path / "docs"))]
    result = runner.invoke(app, [*args, "--data-out", str(tmp_path / "data")], prog_name="lorag")
    assert result.exit_code == 2 and "does not read" in result.stderr and "--data-out" in result.stderr
