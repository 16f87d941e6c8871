"""The eval file that `training.docs` writes is a lorag eval dataset (it is read here by eval's loader)."""

from __future__ import annotations

from core.settings import TeacherSettings
from eval.datasets import load_dataset, load_questions
from tests.training.docs.conftest import FakeTeacher, options, write_docs
from training.docs import build_dataset
from training.docs.outputs import EVAL_FILE


def test_the_generated_eval_file_loads_as_a_static_dataset(tmp_path):
    docs = write_docs(tmp_path / "docs")
    build_dataset(options(docs, tmp_path / "out", eval_share=0.5), FakeTeacher(), TeacherSettings())
    questions = load_questions(tmp_path / "out" / EVAL_FILE)
    assert questions and all(q.kind == "static" and q.answers and not q.gold_sources for q in questions)
    assert all(q.metadata["chunk_text"] and q.metadata["source_id"] for q in questions)
    assert len(load_dataset(tmp_path / "out" / EVAL_FILE).questions) == len(questions)
