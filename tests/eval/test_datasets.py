from __future__ import annotations

import pytest

from eval.datasets import load_questions


def test_demo_dataset_shape():
    questions = load_questions()
    kinds = [q.kind for q in questions]
    assert kinds.count("static") >= 20 and kinds.count("evolving") >= 10
    assert len({q.id for q in questions}) == len(questions)
    assert all(q.answers for q in questions)
    assert all(q.gold_sources for q in questions if q.kind == "evolving")


def test_bad_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "question": "q", "answers": ["x"]}\n{"id": "b"}\n')
    with pytest.raises(ValueError, match=r"d.jsonl:2"):
        load_questions(path)
