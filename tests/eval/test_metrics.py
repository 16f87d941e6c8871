from __future__ import annotations

import pytest

from eval.metrics import answer_contained, containment, mrr, normalize, recall_at_k


def test_normalize():
    assert normalize("  The  ANSWER\tis\nＦＵＬＬ ") == "the answer is full"


def test_answer_contained_is_case_and_space_insensitive():
    assert answer_contained("It costs $319 today.", ["$319", "319"])
    assert answer_contained("Founded by marisol   okafor-lindqvist.", ["Marisol Okafor-Lindqvist"])
    assert not answer_contained("It costs $318.", ["$319", "319"])
    assert not answer_contained("anything", ["", "  "])


def test_containment_hand_computed():
    result = containment(["a Emberfox b", "no", "x LX-47"], [["Emberfox"], ["yes"], ["LX 47", "LX-47"]])
    assert result == {"score": pytest.approx(2 / 3), "individual_scores": [1.0, 0.0, 1.0]}
    with pytest.raises(ValueError):
        containment(["a"], [])


def test_recall_at_k_hand_computed():
    retrieved = [["a.md", "b.md", "c.md"], ["x.md", "y.md"], ["q.md"]]
    gold = [["b.md"], ["y.md", "z.md"], []]
    assert recall_at_k(retrieved, gold, k=1) == {"score": 0.0, "individual_scores": [0.0, 0.0]}
    assert recall_at_k(retrieved, gold, k=2) == {"score": 0.75, "individual_scores": [1.0, 0.5]}


def test_mrr_hand_computed():
    retrieved = [["a", "b", "c"], ["x", "y", "z"], ["q"], ["p"]]
    gold = [["b"], ["z", "y"], ["nope"], []]
    # 1/2, then the first gold at rank 2 (y) gives 1/2, then 0; the query without gold is skipped.
    assert mrr(retrieved, gold) == {"score": pytest.approx(1 / 3), "individual_scores": [0.5, 0.5, 0.0]}
    assert mrr(retrieved, gold, k=1) == {"score": 0.0, "individual_scores": [0.0, 0.0, 0.0]}
    assert mrr([["g", "g"]], [["g"]]) == {"score": 1.0, "individual_scores": [1.0]}
    assert mrr([], []) == {"score": 0.0, "individual_scores": []}
    with pytest.raises(ValueError):
        mrr([["a"]], [])
