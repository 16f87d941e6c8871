from __future__ import annotations

import pytest

from eval.gates import compare, promotion_gate
from eval.metrics import recall_at_k

# Ten questions: one system gets 8 right, the other 7 (it misses questions 3 and 8, gets question 4).
BETTER = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
WORSE = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_promotion_passes_when_the_candidate_is_not_worse():
    result = promotion_gate(BETTER, WORSE, margin=0.0, metric="exact_match")
    assert result.passed and result.metric == "exact_match"
    assert result.candidate["mean"] == 0.8 and result.current is not None and result.current["mean"] == 0.7
    assert result.difference is not None and result.difference["mean"] == pytest.approx(0.1)
    assert result.message.startswith("exact_match: candidate 0.800 [")
    assert "paired difference +0.100 [" in result.message and result.message.endswith(": pass")


def test_promotion_fails_below_the_margin_and_says_by_how_much():
    result = promotion_gate(WORSE, BETTER, margin=0.05, metric="exact_match")
    assert not result.passed
    assert "candidate 0.700" in result.message and "current 0.800" in result.message
    assert "paired difference -0.100" in result.message
    assert result.message.endswith("a drop of more than 0.050: fail")


def test_a_drop_of_exactly_the_margin_passes():
    # 0.8 - 0.1 is 0.7000000000000001 in floats: the tolerance keeps the edge on the passing side.
    assert promotion_gate(WORSE, BETTER, margin=0.1).passed
    assert not promotion_gate(WORSE, BETTER, margin=0.0999).passed


def test_no_current_passes_and_unpaired_scores_are_compared_by_their_means():
    first = promotion_gate(WORSE, None, margin=0.0)
    assert first.passed and first.current is None and "no current one" in first.message
    unpaired = promotion_gate(WORSE, BETTER[:5], margin=0.0)
    assert not unpaired.passed and unpaired.difference is None  # 0.7 < 0.8 on its first five
    assert "not paired (10 vs 5 items)" in unpaired.message


def test_compare_on_recall_individual_scores():
    gold = [["a"], ["b"], ["c", "d"]]
    current = recall_at_k([["a"], ["b"], ["c", "d"]], gold, k=2)["individual_scores"]
    candidate = recall_at_k([["a"], ["x"], ["c", "x"]], gold, k=2)["individual_scores"]
    assert candidate == [1.0, 0.0, 0.5]
    result = compare("recall@2", candidate, current, 0.1)
    assert not result.passed and result.metric == "recall@2"
    assert result.message.startswith("recall@2: candidate 0.500 [")
    assert compare("recall@2", candidate, current, 0.5).passed


def test_gates_refuse_nothing_to_judge():
    with pytest.raises(ValueError, match="candidate"):
        promotion_gate([], BETTER, margin=0.0)
    with pytest.raises(ValueError, match="pass None"):
        promotion_gate(WORSE, [], margin=0.0)
    with pytest.raises(ValueError, match="margin"):
        promotion_gate(WORSE, BETTER, margin=-0.1)
