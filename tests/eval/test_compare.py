from __future__ import annotations

import pytest

from eval.compare import compare_runs, format_comparison
from eval.records import write_run
from tests.eval.synthetic import QUESTIONS, demo_records, rag_records, record, run_info

PRICES = {"*": {"input_per_million": 1.0, "output_per_million": 2.0}}


def wrong_demo_records():
    """demo answering every question wrongly, with longer prompts (100 tokens)."""
    return [record(q, "demo", "I do not know.", prompt_tokens=100) for q in QUESTIONS]


def right_demo_records():
    return [record(q, "demo", QUESTIONS[q]["answers"][0]) for q in QUESTIONS]


def write(directory, records, run_id, routes=("demo", "demo+rag")):
    write_run(directory, run_info(run_id=run_id, routes=list(routes), prices=PRICES), records)
    return directory


def test_a_clear_improvement_is_called_better(tmp_path):
    a = write(tmp_path / "a", wrong_demo_records(), "before", routes=["demo"])
    b = write(tmp_path / "b", right_demo_records(), "after", routes=["demo"])
    result = compare_runs(a, b)
    containment = result["routes"]["demo"]["quality"]["overall"]["containment"]
    assert containment["a"] == 0.0 and containment["b"] == 1.0 and containment["delta"] == 1.0
    assert containment["paired"]["difference"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 4}
    assert containment["paired"]["verdict"] == "better"
    static = result["routes"]["demo"]["quality"]["static"]["containment"]
    assert static["paired"]["difference"]["n"] == 2 and static["paired"]["verdict"] == "better"
    serving = result["routes"]["demo"]["serving"]
    assert serving["prompt_tokens"] == {"a": 100.0, "b": 50.0, "delta": -50.0}
    # 100 prompt + 10 completion tokens: $0.12 per 1,000; 50 + 10: $0.07.
    assert serving["cost_per_1000"]["delta"] == pytest.approx(-0.05)
    assert result["routes"]["demo"]["same_questions"]


def test_the_same_run_twice_is_no_clear_change(tmp_path):
    a = write(tmp_path / "a", demo_records() + rag_records(), "a")
    b = write(tmp_path / "b", demo_records() + rag_records(), "b")
    result = compare_runs(a, b)
    for route in ("demo", "demo+rag"):
        for metric, cell in result["routes"][route]["quality"]["overall"].items():
            assert cell["delta"] == 0.0, metric
            assert cell["paired"]["difference"]["mean"] == 0.0
            assert cell["paired"]["verdict"] == "no clear change"
    assert result["only_in_a"] == result["only_in_b"] == []


def test_a_mixed_change_whose_interval_reaches_0_is_no_clear_change(tmp_path):
    # demo → demo+rag's answers: s2 gets worse, e1 and e2 better: +0.25 on 4 questions is not clear.
    a = write(tmp_path / "a", demo_records(), "a", routes=["demo"])
    b = write(tmp_path / "b", [r.__class__(**{**vars(r), "route": "demo"}) for r in rag_records()], "b")
    cell = compare_runs(a, b)["routes"]["demo"]["quality"]["overall"]["containment"]
    assert cell["delta"] == 0.25 and cell["paired"]["difference"]["mean"] == 0.25
    assert cell["paired"]["difference"]["low"] < 0 < cell["paired"]["difference"]["high"]
    assert cell["paired"]["verdict"] == "no clear change"


def test_routes_in_one_run_only_and_partly_shared_questions(tmp_path):
    a = write(tmp_path / "a", demo_records() + rag_records(), "a")
    b = write(tmp_path / "b", right_demo_records()[:3], "b", routes=["demo"])
    result = compare_runs(a, b)
    assert result["only_in_a"] == ["demo+rag"] and result["only_in_b"] == []
    demo = result["routes"]["demo"]
    assert demo["shared_questions"] == 3 and not demo["same_questions"]
    # On s1, s2, e1: demo scored 1, 1, 0 in A and 1, 1, 1 in B.
    assert demo["quality"]["overall"]["containment"]["paired"]["difference"]["mean"] == pytest.approx(1 / 3)


def test_a_reused_id_for_another_question_is_not_paired(tmp_path):
    a = write(tmp_path / "a", right_demo_records(), "a", routes=["demo"])
    changed = [r.__class__(**{**vars(r), "question": "Something else?"}) if r.question_id == "s1" else r
               for r in right_demo_records()]  # fmt: skip
    b = write(tmp_path / "b", changed, "b", routes=["demo"])
    assert compare_runs(a, b)["routes"]["demo"]["shared_questions"] == 3


def test_the_text_names_both_runs_and_each_verdict(tmp_path):
    a = write(tmp_path / "a", wrong_demo_records() + rag_records(), "before")
    b = write(tmp_path / "b", right_demo_records(), "after", routes=["demo"])
    output = format_comparison(compare_runs(a, b))
    assert output.startswith("A: before (synthetic, ")
    rows = [[cell.strip() for cell in line.split("|")] for line in output.splitlines()]
    assert next(row for row in rows if row[:2] == ["containment", "overall"]) == [
        "containment",
        "overall",
        "0.00",
        "1.00",
        "+1.00",
        "+1.00 [+1.00, +1.00]",
        "better",
    ]
    assert "cost / 1k" in output and "-$0.05" in output
    assert output.rstrip().endswith("Only in A: demo+rag")
