from __future__ import annotations

import pytest

from eval.metrics import (
    answer_contained,
    containment,
    exact_match,
    f1_score,
    latency,
    lexical_support,
    lexical_support_score,
    mrr,
    normalize,
    recall_at_k,
    squad_normalize,
    token_f1,
    tokens_per_request,
)


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


def test_squad_normalize_drops_case_punctuation_articles_and_extra_space():
    assert squad_normalize("  The Hollow-peak, a JACKET!  ") == "hollowpeak jacket"
    assert squad_normalize("Theatre and an apple") == "theatre and apple"  # only whole-word articles go


def test_exact_match_hand_computed():
    result = exact_match(["The Tulsa.", "tulsa oklahoma", "Yes"], [["Tulsa"], ["Tulsa"], ["no", "yes"]])
    assert result == {"score": pytest.approx(2 / 3), "individual_scores": [1.0, 0.0, 1.0]}
    with pytest.raises(ValueError):
        exact_match(["a"], [])


def test_token_f1_hand_computed():
    # "the cat sat on mat" vs "a cat on the mat": tokens {cat, sat, on, mat} vs {cat, on, mat}; 3 in common,
    # precision 3/4, recall 3/3, F1 = 2 * 0.75 * 1 / 1.75 = 6/7.
    assert f1_score("the cat sat on mat", ["a cat on the mat"]) == pytest.approx(6 / 7)
    # The best of the acceptable answers counts: "cat" gives precision 1/4, recall 1, F1 0.4; the other 6/7.
    assert f1_score("the cat sat on mat", ["cat", "cat on mat"]) == pytest.approx(6 / 7)
    # Repeated tokens are matched at most as often as they occur in both.
    assert f1_score("yes yes", ["yes"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert f1_score("", [""]) == 1.0 and f1_score("the", ["x"]) == 0.0 and f1_score("x", []) == 0.0
    result = token_f1(["the cat sat on mat", "dog"], [["a cat on the mat"], ["cat"]])
    assert result == {"score": pytest.approx(3 / 7), "individual_scores": [pytest.approx(6 / 7), 0.0]}


def test_lexical_support_hand_computed():
    chunks = ["The Hollowpeak jacket costs 189 dollars.", "Returns within 30 days."]
    # "it costs 189 dollars" -> tokens it, costs, 189, dollars: all but "it" are in the chunks.
    assert lexical_support_score("It costs 189 dollars!", chunks) == 0.75
    assert lexical_support_score("189 189 euros", chunks) == pytest.approx(2 / 3)  # repeats count
    assert lexical_support_score("", chunks) == 0.0
    assert lexical_support_score("costs", []) == 0.0
    result = lexical_support(["It costs 189 dollars!", "nothing here"], [chunks, chunks])
    assert result == {"score": 0.375, "individual_scores": [0.75, 0.0]}


def test_latency_and_tokens_per_request():
    result = latency([0.4, 0.1, 0.3, 0.2])
    assert result["score"] == pytest.approx(0.25)
    assert result["p50"] == pytest.approx(0.25) and result["p95"] == pytest.approx(0.385)
    assert result["individual_scores"] == [0.4, 0.1, 0.3, 0.2]
    assert latency([]) == {"score": 0.0, "p50": 0.0, "p95": 0.0, "individual_scores": []}
    tokens = tokens_per_request([100, 300], [20, 40])
    assert tokens == {
        "score": 230.0,
        "individual_scores": [120.0, 340.0],
        "prompt": 200.0,
        "completion": 30.0,
    }
    with pytest.raises(ValueError):
        tokens_per_request([1], [])
