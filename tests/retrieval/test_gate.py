from __future__ import annotations

import json

import pytest

from core.types import Chunk, Hit
from retrieval.gate import GateQuestion, load_gate_questions, recall_gate


class Fixed:
    """Returns the given sources, in order, for every query."""

    def __init__(self, *sources: str) -> None:
        self.sources = sources

    def search(self, query: str, k: int) -> list[Hit]:
        return [Hit(Chunk(f"c{i}", source, "text"), 1.0) for i, source in enumerate(self.sources)][:k]


QUESTIONS = [GateQuestion("a?", ["a.md"]), GateQuestion("b?", ["b.md"])]


def test_gate_refuses_a_drop_beyond_the_margin():
    result = recall_gate(Fixed("x.md", "a.md"), Fixed("a.md", "b.md"), QUESTIONS, k=2, margin=0.1)
    assert not result.passed
    assert (result.new_recall, result.current_recall) == (0.5, 1.0)
    assert "more than the allowed drop" in result.reason


def test_gate_passes_within_margin_and_without_current():
    assert recall_gate(Fixed("a.md"), Fixed("a.md", "b.md"), QUESTIONS, k=2, margin=0.5).passed
    first = recall_gate(Fixed("a.md"), None, QUESTIONS, k=2, margin=0.0)
    assert first.passed and first.current_recall is None


def test_load_gate_questions(tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [{"question": "q1", "gold_sources": ["a.md"]}, {"question": "static", "gold_sources": []}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert load_gate_questions(path) == [GateQuestion("q1", ["a.md"])]
    path.write_text('{"question": "x"}\n')
    with pytest.raises(ValueError, match="no questions"):
        load_gate_questions(path)
