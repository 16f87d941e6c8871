"""The refresh scenario's changes still match the shipped demo corpus, and they change every answer."""

from __future__ import annotations

import json
import shutil

import pytest

from eval.datasets import load_dataset
from eval.scenario import SCENARIO_DIR, ScenarioError, apply_changes
from retrieval.build import DEMO_CORPUS


def test_changes_apply_to_a_copy_of_the_demo_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(DEMO_CORPUS, corpus)
    changes = json.loads((SCENARIO_DIR / "changes.json").read_text())
    changed = apply_changes(corpus, changes)
    questions = load_dataset(SCENARIO_DIR / "questions.jsonl").questions
    assert {source for q in questions for source in q.gold_sources} <= set(changed)
    for question in questions:
        text = "".join((corpus / source).read_text() for source in question.gold_sources)
        original = "".join((DEMO_CORPUS / source).read_text() for source in question.gold_sources)
        # The new answer is in the changed document only; the old one was in the original.
        assert any(answer in text for answer in question.answers), question.id
        assert not any(answer in original for answer in question.answers), question.id
        assert question.metadata["before"] in original, question.id
    assert (DEMO_CORPUS / "pricing.md").read_text().count("$349") == 0  # the shipped corpus is untouched


def test_a_drifted_corpus_fails_loudly(tmp_path):
    (tmp_path / "pricing.md").write_text("The Driftglass 3 tent costs $999.")
    with pytest.raises(ScenarioError, match="pricing.md"):
        apply_changes(tmp_path, {"edits": [{"source": "pricing.md", "replace": [["$319", "$349"]]}]})


def test_followed_counts_only_questions_right_before():
    from eval.records import Record
    from eval.scenario import followed

    def rec(qid: str, answer: str, answers: list[str]) -> Record:
        return Record(qid, "demo+rag", "refresh", "q", answers, answer=answer)

    before = [rec("a", "$319", ["319"]), rec("b", "no idea", ["45 days"]), rec("c", "7 pm", ["7 pm"])]
    after = [rec("a", "$349", ["$349"]), rec("b", "60 days", ["60 days"]), rec("c", "7 pm", ["7:30 pm"])]
    assert followed(before, after, "demo+rag") == {"right_before": 2, "also_right_after": 1, "share": 0.5}
    assert followed([], after, "demo+rag")["share"] is None
