"""Every command, given a missing file, a malformed file and a bad option value, fails with one readable
line that names the file, line or field — exit code 2 for bad input — and no traceback unless --verbose."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from cli import app

runner = CliRunner()

MISSING = "missing.jsonl"
MISSING_YAML = "missing.yaml"
MISSING_DIR = "no-such-dir"
BAD_JSONL = "bad.jsonl"  # JSON broken on its second line
BINARY = "binary.jsonl"  # not UTF-8
BAD_YAML = "bad.yaml"  # not YAML
BAD_FIELD = "bad-field.yaml"  # YAML with an unknown / mistyped field
NOT_A_RUN = "not-a-run"  # a directory that is no evaluation run

# command → cases: (argv, exit code, text the one error line must contain)
CASES: dict[str, list[tuple[list[str], int, str]]] = {
    "serve": [
        (["--settings", MISSING_YAML, "serve"], 2, f"{MISSING_YAML}: no such settings file"),
        (["--settings", BAD_YAML, "serve"], 2, f"{BAD_YAML}:2:1: invalid YAML"),
        (["--settings", BAD_FIELD, "serve"], 2, "lora_r: Extra inputs are not permitted"),
        (["serve", "--port", "abc"], 2, "Invalid value for '--port'"),
        (["serve", "--refresh-every", "5q"], 2, "'5q' is not a duration"),
    ],
    "retrain": [
        (["retrain", "--config", MISSING_YAML], 2, f"{MISSING_YAML}: no such file or directory"),
        (["retrain", "--config", BAD_YAML], 2, f"{BAD_YAML}:2: invalid YAML"),
        (["retrain", "--config", BAD_FIELD], 2, "lora_r: Input should be a valid integer"),
        (["retrain", "--config", BAD_FIELD, "--margin", "x"], 2, "Invalid value for '--margin'"),
    ],
    "models pull": [
        (["--settings", MISSING_YAML, "models", "pull"], 2, "no such settings file"),
        (["--settings", BAD_FIELD, "models", "pull"], 2, "lora_r: Extra inputs are not permitted"),
        (["models", "pull", "--chat-model", MISSING_DIR + "/"], 2, MISSING_DIR),
    ],
    "models list": [(["models", "list", "--kind", "x"], 2, "No such option: --kind")],
    "index build": [
        (["index", "build", "--corpus", MISSING_DIR], 2, f"corpus directory {MISSING_DIR} does not exist"),
        (["index", "build", "--corpus", "empty"], 2, "no documents to index"),
        (["--settings", BAD_YAML, "index", "build"], 2, "invalid YAML"),
    ],
    "index refresh": [
        (["index", "refresh", "--corpus", MISSING_DIR], 2, f"corpus directory {MISSING_DIR} does not exist"),
        (["--settings", BAD_FIELD, "index", "refresh"], 2, "lora_r: Extra inputs are not permitted"),
    ],
    "index delete": [
        (["--settings", MISSING_YAML, "index", "delete", "a.md"], 2, "no such settings file"),
        (["index", "delete", "a.md"], 1, "no index snapshot"),  # refused: nothing indexed yet
    ],
    "index stats": [
        (["--settings", BAD_YAML, "index", "stats"], 2, "invalid YAML"),
        (["index", "stats", "--json=yes"], 2, "--json"),
        (["index", "stats"], 1, "no index snapshot"),
    ],
    "index snapshots": [(["--settings", BAD_FIELD, "index", "snapshots"], 2, "lora_r")],
    "index rollback": [
        (["--settings", BAD_FIELD, "index", "rollback"], 2, "lora_r"),
        (["index", "rollback"], 1, "no index snapshot"),
    ],
    "index search": [
        (["index", "search", "q", "--mode", "nope"], 2, "use dense, bm25 or hybrid"),
        (["index", "search", "q", "-k", "abc"], 2, "Invalid value for '-k'"),
        (["--settings", MISSING_YAML, "index", "search", "q"], 2, "no such settings file"),
    ],
    "demo prepare": [(["--settings", BAD_YAML, "demo", "prepare"], 2, "invalid YAML")],
    "adapters list": [(["--settings", BAD_FIELD, "adapters", "list"], 2, "lora_r")],
    "adapters show": [(["adapters", "show", "nope"], 2, "no adapter 'nope'")],
    "adapters promote": [
        (["adapters", "promote", "nope", "v1"], 2, "adapter 'nope' has no version 'v1'"),
        (["adapters", "promote", "nope", "v1", "--margin", "x"], 2, "Invalid value for '--margin'"),
    ],
    "adapters rollback": [(["adapters", "rollback", "nope"], 2, "adapter 'nope'")],
    "train": [
        (["train", "--config", MISSING_YAML], 2, f"{MISSING_YAML}: no such file or directory"),
        (["train", "--config", BAD_YAML], 2, f"{BAD_YAML}:2: invalid YAML"),
        (["train", "--config", BAD_FIELD], 2, f"{BAD_FIELD}: output_name: Field required"),
    ],
    "train validate": [
        (["train", "validate", MISSING], 2, f"{MISSING}: no such file or directory"),
        (["train", "validate", BINARY], 2, f"{BINARY}:1: not UTF-8 text"),
        (["train", "validate", BAD_JSONL, "--max-length", "abc"], 2, "Invalid value for '--max-length'"),
    ],
    "train data raft": [
        (["train", "data", "raft", "--input", MISSING, "--out", "o.jsonl"], 2, f"{MISSING}: no such file"),
        (["train", "data", "raft", "--input", BAD_JSONL, "--out", "o.jsonl"], 2, f"{BAD_JSONL}:2:2"),
        (["train", "data", "raft", "--input", BAD_JSONL, "--out", "o", "--p-gold", "2"], 2, "'--p-gold'"),
    ],
    "train data from-docs": [
        (["train", "data", "from-docs", "--docs", MISSING_DIR, "--out", "o"], 2, MISSING_DIR),
        (["train", "data", "from-docs", "--docs", "empty", "--out", "o"], 2, "empty"),
        (
            ["train", "data", "from-docs", "--docs", "empty", "--out", "o", "--eval-share", "x"],
            2,
            "--eval-share",
        ),
        (["--settings", BAD_FIELD, "train", "data", "from-docs", "--docs", "e", "--out", "o"], 2, "lora_r"),
    ],
    "eval run": [
        (["eval", "run", "--dataset", MISSING], 2, f"{MISSING}: no such file or directory"),
        (["eval", "run", "--dataset", BAD_JSONL], 2, f"{BAD_JSONL}:2:2: invalid JSON"),
        (["eval", "run", "--dataset", BINARY], 2, f"{BINARY}:1: not UTF-8 text"),
        (["eval", "run", "--max-tokens", "abc"], 2, "Invalid value for '--max-tokens'"),
        (["eval", "run", "--routes", ","], 2, "name at least one route"),
    ],
    "eval report": [
        (["eval", "report", MISSING_DIR], 2, f"{MISSING_DIR} is not an evaluation run"),
        (["eval", "report", NOT_A_RUN], 2, f"{NOT_A_RUN} is not an evaluation run"),
        (["eval", "report", NOT_A_RUN, "--rate", "x"], 2, "Invalid value for '--rate'"),
    ],
    "eval compare": [
        (["eval", "compare", MISSING_DIR, NOT_A_RUN], 2, f"{MISSING_DIR} is not an evaluation run"),
    ],
    "eval calibrate": [
        (["eval", "calibrate", "--dataset", MISSING], 2, f"{MISSING}: no such file or directory"),
        (["eval", "calibrate", "--dataset", BAD_JSONL], 2, f"{BAD_JSONL}:2:2: invalid JSON"),
        (["eval", "calibrate", "--held-out", "x"], 2, "Invalid value for '--held-out'"),
    ],
    "eval refresh-scenario": [
        (["--settings", MISSING_YAML, "eval", "refresh-scenario"], 2, "no such settings file"),
        (["eval", "refresh-scenario", "--max-tokens", "abc"], 2, "Invalid value for '--max-tokens'"),
    ],
    "bench retrieval": [(["bench", "retrieval", "--quick=x"], 2, "--quick")],
    "bench embedders": [
        (["bench", "embedders", "--refs", "all-MiniLM-L6-v2@tensorflow", "--quick"], 2, "tensorflow"),
        (["bench", "embedders", "--quick=x"], 2, "--quick"),
    ],
    "bench train": [
        (["bench", "train", "--steps", "abc"], 2, "Invalid value for '--steps'"),
        (["--settings", BAD_YAML, "bench", "train"], 2, "invalid YAML"),
    ],
    "bench from-docs": [
        (["bench", "from-docs", "--fresh=x"], 2, "--fresh"),
        (["bench", "from-docs", "--work", BAD_JSONL], 2, f"{BAD_JSONL}: not a directory"),
        (["--settings", BAD_FIELD, "bench", "from-docs"], 2, "lora_r"),
    ],
    "bench serve": [
        (["bench", "serve", "--port-range", "x"], 2, "'x' is not a port range"),
        (["bench", "serve", "--clients", "abc"], 2, "Invalid value for '--clients'"),
        (["--settings", BAD_FIELD, "bench", "serve"], 2, "lora_r"),
    ],
}


def leaf_commands(command: object, prefix: str = "") -> set[str]:
    """Every command a user can run, as `group sub` paths (a group with its own callback counts too)."""
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        return {prefix}
    found = {prefix} if prefix and getattr(command, "invoke_without_command", False) else set()
    for name, sub in subcommands.items():
        found |= leaf_commands(sub, f"{prefix} {name}".strip())
    return found


@pytest.fixture
def inputs(home: Path) -> Path:
    """The bad inputs, in the working directory the cases run in."""
    cwd = Path.cwd()
    (cwd / BAD_JSONL).write_text('{"messages": [\n{oops\n')
    (cwd / BINARY).write_bytes(b'\xfb\xfc{"id": "1"}\n')
    (cwd / BAD_YAML).write_text("routes: [unclosed\n")
    (cwd / BAD_FIELD).write_text("lora_r: many\n")
    (cwd / NOT_A_RUN).mkdir()
    (cwd / "empty").mkdir()
    return cwd


def test_the_cases_cover_every_command() -> None:
    commands = leaf_commands(typer.main.get_command(app))
    assert commands == set(CASES), f"missing: {commands - set(CASES)}; stale: {set(CASES) - commands}"


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [case for cases in CASES.values() for case in cases],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_bad_input_is_one_readable_line(inputs: Path, argv: list[str], code: int, expected: str) -> None:
    result = runner.invoke(app, argv, prog_name="lorag")
    lines = [line for line in result.stderr.splitlines() if not line.startswith(("WARNING", "INFO"))]
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert (
        "Traceback" not in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )


def test_verbose_keeps_the_traceback(inputs: Path) -> None:
    result = runner.invoke(app, ["--verbose", "eval", "run", "--dataset", BAD_JSONL], prog_name="lorag")
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError) and "bad.jsonl:2:2" in str(result.exception)


def test_usage_errors_name_the_command_to_ask_for_help(inputs: Path) -> None:
    result = runner.invoke(app, ["eval", "run", "--max-tokens", "abc"], prog_name="lorag")
    assert result.stderr.strip().endswith("(see `lorag eval run --help`)")
