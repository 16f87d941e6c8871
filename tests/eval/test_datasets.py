from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import (
    DEMO_DATASET,
    Passage,
    Question,
    detect_format,
    load_dataset,
    load_questions,
    raft_items,
)
from training.raft import RaftItem


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


FIXTURES = Path(__file__).parent / "fixtures"


def test_question_constructor_stays_backward_compatible():
    question = Question("a", "q?", ["x"], "evolving", ["s.md"])
    assert (question.split, question.reference, question.metadata) == (None, None, {})


def test_lorag_jsonl_with_optional_fields_and_duplicate_ids(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "question": "q", "answers": ["x"], "split": "calibration"}\n')
    dataset = load_dataset(path)
    assert dataset.documents == [] and dataset.questions[0].split == "calibration"
    path.write_text(
        '{"id": "a", "question": "q", "answers": ["x"]}\n\n{"id": "a", "question": "r", "answers": ["y"]}\n'
    )
    with pytest.raises(ValueError, match=r"d.jsonl:3: duplicate id 'a'"):
        load_questions(path)


def test_squad_paragraphs_become_passages_and_unanswerable_questions_are_left_out():
    dataset = load_dataset(FIXTURES / "squad.json")
    assert [p.id for p in dataset.documents] == ["Lumora#0", "Lumora#1"]
    assert dataset.documents[1] == Passage("Lumora#1", "Its mascot is a fox called Pipwick.", "Lumora")
    assert [q.id for q in dataset.questions] == ["q1", "q3"]
    first = dataset.questions[0]
    assert first.answers == ["Marisol Okafor-Lindqvist", "Okafor-Lindqvist"]
    assert (first.gold_sources, first.kind) == (["Lumora#0"], "evolving")


def test_hotpotqa_pools_passages_by_title_and_golds_are_supporting_titles():
    dataset = load_dataset(FIXTURES / "hotpotqa.jsonl", kind="multihop")
    passages = {p.id: p for p in dataset.documents}
    assert list(passages) == ["Tinted Windows (album)", "Tinted Windows (band)", "Ants Marching"]
    # Sentences carry their leading space; the longer excerpt of a page shared by two questions wins.
    assert (
        passages["Tinted Windows (band)"].text
        == "Tinted Windows was an American supergroup. Their first show was in Tulsa."
    )
    assert passages["Ants Marching"].text == "Ants Marching is a song. It was released in 1995."
    first, second = dataset.questions
    assert first.answers == ["Tulsa"] and first.kind == "multihop"
    assert first.gold_sources == ["Tinted Windows (album)", "Tinted Windows (band)"]
    assert first.metadata == {"type": "bridge", "level": "hard"}
    assert second.gold_sources == ["Ants Marching"]


def test_pubmedqa_answers_are_the_decision_and_the_abstract_is_the_passage():
    dataset = load_dataset(FIXTURES / "pubmedqa.json")
    first = dataset.questions[0]
    assert (first.id, first.answers, first.gold_sources) == ("111", ["yes"], ["111"])
    assert first.reference == "Telephone counselling works best for nonadherent women."
    assert first.metadata == {"year": "2000"}
    assert dataset.documents[0] == Passage(
        "111",
        "Background: Counselling by phone is promising.\n\n"
        "Results: Phone counselling raised adherence (71% vs 61%).",
        "PubMed 111",
    )
    # The conclusion is the reference answer, so it must not be in the passage that retrieval returns.
    assert all(q.reference not in p.text for q, p in zip(dataset.questions, dataset.documents, strict=True))
    assert dataset.documents[0].to_record() == {
        "id": "111",
        "title": "PubMed 111",
        "text": dataset.documents[0].text,
    }


def test_format_detection_and_explicit_format(tmp_path):
    assert detect_format(FIXTURES / "squad.json") == "squad"
    assert detect_format(FIXTURES / "hotpotqa.jsonl") == "hotpotqa"
    assert detect_format(FIXTURES / "pubmedqa.json") == "pubmedqa"
    assert detect_format(DEMO_DATASET) == "lorag"
    compact = tmp_path / "squad_one_line.json"
    compact.write_text(json.dumps(json.loads((FIXTURES / "squad.json").read_text())))
    assert detect_format(compact) == "squad"
    assert len(load_dataset(FIXTURES / "squad.json", format="squad").questions) == 2
    odd = tmp_path / "odd.json"
    odd.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a dataset"):
        load_dataset(odd)
    with pytest.raises(ValueError, match="unknown dataset format"):
        load_dataset(odd, format="csv")  # type: ignore[arg-type]


def test_raft_items_come_from_raft_jsonl_or_an_eval_dataset(tmp_path: Path) -> None:
    raft = tmp_path / "qa.jsonl"
    raft.write_text(json.dumps({"question": "q", "answer": "a", "gold_sources": ["tent"]}) + "\n")
    assert raft_items(raft) == [RaftItem("q", "a", ("tent",))]
    lorag = tmp_path / "eval.jsonl"
    rows = [
        {"id": "1", "question": "q", "answers": ["a", "b"], "gold_sources": ["s"]},
        {"id": "2", "question": "no gold", "answers": ["a"], "gold_sources": []},
    ]
    lorag.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert raft_items(lorag) == [RaftItem("q", "a", ("s",))]


def test_unknown_fields_are_kept_in_metadata_with_one_warning(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "outside.jsonl"
    rows = [
        {"id": 1, "question": "q1", "answers": ["a"], "answers_before_refresh": ["old"]},
        {
            "id": 2,
            "question": "q2",
            "answers": ["b"],
            "gold_source": ["doc.md"],
            "answers_before_refresh": [],
        },
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with caplog.at_level("WARNING", logger="eval.datasets"):
        first, second = load_questions(path)
    assert first.id == "1" and first.metadata == {"answers_before_refresh": ["old"]}
    assert second.gold_sources == [] and second.metadata["gold_source"] == ["doc.md"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert "'answers_before_refresh' (first on line 1)" in warning
    assert "'gold_source' (first on line 2) (did you mean 'gold_sources'?)" in warning


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "1", "answers": ["a"]}, r"x.jsonl:1: missing field 'question'"),
        (
            {"id": "1", "question": "q", "answer": ["a"]},
            r"missing field 'answers' \(found 'answer': a typo\?\)",
        ),
        ({"id": "1", "question": "q", "answers": "a"}, r"x.jsonl:1: field 'answers' must be a list"),
        ({"id": "1", "question": "q", "answers": ["a"], "gold_sources": "d"}, r"field 'gold_sources' must"),
        ({"id": "1", "question": "", "answers": ["a"]}, r"field 'question' must be a non-empty string"),
    ],
)
def test_bad_rows_name_the_line_and_the_field(tmp_path: Path, row: dict, message: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=message):
        load_questions(path)
