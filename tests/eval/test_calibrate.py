"""Router calibration: splits, the fitted threshold, and pairing always/never answers."""

from __future__ import annotations

import pytest

from eval.calibrate import CALIBRATION, HELD_OUT, Outcome, auto_scores, fit_threshold, retrieval_share, split
from eval.commands import outcomes_by_route
from eval.datasets import Question
from eval.records import Record


def test_threshold_separates_questions_retrieval_helps_from_those_it_hurts():
    outcomes = [
        Outcome("a", 0.8, always=1, never=0),  # helps
        Outcome("b", 0.7, always=1, never=0),  # helps
        Outcome("c", 0.3, always=0, never=1),  # hurts (a static fact the adapter knows)
        Outcome("d", 0.2, always=1, never=1),  # indifferent
    ]
    threshold = fit_threshold(outcomes)
    assert threshold == pytest.approx(0.5)  # midway between 0.3 and 0.7
    assert auto_scores(outcomes, threshold) == [1, 1, 1, 1]
    assert retrieval_share(outcomes, threshold) == 0.5


def test_ties_prefer_the_threshold_that_retrieves_least():
    indifferent = [Outcome("a", 0.6, 1, 1), Outcome("b", 0.4, 0, 0)]
    assert fit_threshold(indifferent) == pytest.approx(0.61)  # above every relevance: never retrieve
    with pytest.raises(ValueError, match="no calibration outcomes"):
        fit_threshold([])


def test_split_is_stable_stratified_and_respects_given_splits():
    questions = [Question(f"s{i}", "q", ["a"], "static") for i in range(10)]
    questions += [Question(f"e{i}", "q", ["a"], "evolving") for i in range(6)]
    questions.append(Question("fixed", "q", ["a"], "evolving", split=HELD_OUT))
    first, again = split(questions), split(list(reversed(questions)))
    assert {q.id for q in first[HELD_OUT]} == {q.id for q in again[HELD_OUT]}
    assert "fixed" in {q.id for q in first[HELD_OUT]}
    for kind, total in (("static", 10), ("evolving", 6)):
        held = [q for q in first[HELD_OUT] if q.kind == kind and q.id != "fixed"]
        calibration = [q for q in first[CALIBRATION] if q.kind == kind]
        assert len(held) == total // 2 and len(calibration) == total - total // 2


def record(qid: str, route: str, answer: str, relevance: float | None, error: str | None = None) -> Record:
    return Record(qid, route, "evolving", "q", ["$319"], answer=answer, relevance=relevance, error=error)


def test_outcomes_pair_always_and_never_and_skip_failures():
    always = [
        record("1", "r", "It costs $319.", 0.7),
        record("2", "r", "no idea", 0.2),
        record("3", "r", "", 0.9, error="APIConnectionError"),
        record("4", "r", "$319", None),  # no relevance: nothing to threshold
    ]
    never = [record(q, "r", "I think $299", None) for q in "1234"]
    outcomes = outcomes_by_route(always, never)["r"]
    assert outcomes == [Outcome("1", 0.7, 1.0, 0.0), Outcome("2", 0.2, 0.0, 0.0)]
