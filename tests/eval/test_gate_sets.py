"""The gate set of a retrain: the union of the kept and the new eval sets, less retired items, hashed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from eval.gate_sets import retired_ids, write_gate_set


def jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def item(id_: str, question: str) -> dict[str, object]:
    return {"id": id_, "question": question, "answers": ["x"], "kind": "static"}


def test_union_keeps_first_of_each_question_and_drops_retired_items(tmp_path: Path) -> None:
    old = jsonl(tmp_path / "old.jsonl", [item("s1", "Who founded it?"), item("d1", "What was it called?")])
    new = jsonl(
        tmp_path / "new.jsonl",
        [item("d1", "What was it called?"), item("d2", "Who  founded IT?"), item("d3", "Where is it?")],
    )
    gate = write_gate_set([old, new], tmp_path / "out" / "gate.jsonl", retired_ids=["d1"])
    rows = [json.loads(line) for line in gate.path.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["s1", "d3"]  # d1 retired (both copies), d2 asks s1's question
    assert gate.retired == 2 and gate.questions == 2
    assert [s["questions"] for s in gate.sources] == [1, 1]
    assert gate.sha256 == hashlib.sha256(gate.path.read_bytes()).hexdigest()
    assert gate.manifest_field()["file"] == "gate-eval.jsonl"


def test_an_empty_union_and_a_broken_line_are_named(tmp_path: Path) -> None:
    empty = jsonl(tmp_path / "empty.jsonl", [])
    with pytest.raises(ValueError, match="no questions to gate on"):
        write_gate_set([empty], tmp_path / "gate.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "a"}\n{oops\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken.jsonl:2: invalid JSON"):
        write_gate_set([broken], tmp_path / "gate.jsonl")


def test_retired_ids_come_from_the_data_card(tmp_path: Path) -> None:
    assert retired_ids(tmp_path / "card.json") == []
    (tmp_path / "card.json").write_text(json.dumps({"retired_eval": [{"id": "d1", "retired_because": "x"}]}))
    assert retired_ids(tmp_path / "card.json") == ["d1"]
