"""A whole run with a fake teacher: what is written, and the guarantees about it."""

from __future__ import annotations

import json
from pathlib import Path

from training.data import read_examples
from training.docs import build_dataset
from training.docs.assemble import leaks
from training.docs.build import read_inputs
from training.docs.outputs import CARD_FILE, EVAL_FILE, PAIRS_FILE, TRAIN_FILE
from training.docs.split import in_eval

from .conftest import FakeTeacher, options


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_a_run_writes_train_eval_pairs_and_card(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    result = build_dataset(options(docs_dir, out, eval_share=0.3), FakeTeacher(), settings)

    examples = read_examples(out / TRAIN_FILE)  # the recipe's own reader: the format is valid
    assert len(examples) == result.train_examples > 20
    for example in examples:  # the serving prompt format for static knowledge: no system message
        assert [m["role"] for m in example.messages] == ["user", "assistant"]

    items = read_jsonl(out / EVAL_FILE)
    assert items, "the fake teacher's targeted questions make eval items"
    for item in items:
        assert item["kind"] == "static" and item["gold_sources"] == []
        assert item["answers"][0] in item["metadata"]["chunk_text"].replace("\n", " ")
        assert in_eval(item["metadata"]["fact"], 0.3)
        assert all(isinstance(value, str) for value in item["metadata"].values())

    card = json.loads((out / CARD_FILE).read_text())
    assert card["teacher"]["identity"] == "fake-teacher@test"
    assert {doc["source_id"] for doc in card["documents"]} == {"history.md", "people.md", "rules.md"}
    assert card["counts"]["proposed"]["teacher"] > 0
    assert "vague" in card["counts"]["rejected"]  # the fake's open calls are vague or off-topic
    assert card["rejected_sample"]
    assert {r["status"] for r in read_jsonl(out / PAIRS_FILE)} >= {"train", "eval", "rejected"}


def test_no_eval_question_or_rewording_of_it_is_in_train(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    build_dataset(options(docs_dir, out, eval_share=0.5), FakeTeacher(), settings)
    common = read_inputs(options(docs_dir, out)).common
    train_questions = [example.messages[0]["content"] for example in read_examples(out / TRAIN_FILE)]
    eval_questions = [item["question"] for item in read_jsonl(out / EVAL_FILE)]
    assert eval_questions
    assert leaks(train_questions, eval_questions, common) == []
    pairs = read_jsonl(out / PAIRS_FILE)
    eval_facts = {item["metadata"]["fact"] for item in read_jsonl(out / EVAL_FILE)}
    for pair in pairs:
        if pair["status"] == "train" and pair.get("fact") in eval_facts:
            # An eval fact may still be taught, but only through the other kinds of question.
            assert pair["origin"] in {"rule:wh", "rule:cloze", "rule:term", "rule:heading"}
    assert any(p["reason"] == "leak" for p in pairs) or any(p["status"] == "held_out" for p in pairs)


def test_each_question_is_kept_once(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    build_dataset(options(docs_dir, out), FakeTeacher(), settings)
    questions = [example.messages[0]["content"].lower() for example in read_examples(out / TRAIN_FILE)]
    assert len(questions) == len(set(questions))
    assert any(p["reason"] == "duplicate" for p in read_jsonl(out / PAIRS_FILE))


def test_several_phrasings_per_fact_and_rewordings_from_the_teacher(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    result = build_dataset(options(docs_dir, out, eval_share=0.0), FakeTeacher(), settings)
    by_fact: dict[str, set[str]] = {}
    for status in result.assembly.statuses:
        if status.status == "train":
            by_fact.setdefault(status.pair.fact, set()).add(status.pair.origin)
    founder = next(origins for fact, origins in by_fact.items() if {"teacher", "paraphrase"} <= origins)
    assert len(founder) >= 4


def test_the_cap_per_fact_holds(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    result = build_dataset(options(docs_dir, out, max_examples_per_fact=2), FakeTeacher(), settings)
    per_fact: dict[str, int] = {}
    for pair in result.assembly.train:
        per_fact[pair.fact] = per_fact.get(pair.fact, 0) + 1
    assert max(per_fact.values()) == 2
    assert any(s.reason == "over_cap" for s in result.assembly.statuses)


def test_unreadable_and_pdf_files_are_skipped_and_listed(docs_dir, tmp_path, settings):
    (docs_dir / "scan.pdf").write_bytes(b"%PDF-1.4 ...")
    (docs_dir / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    out = tmp_path / "out"
    build_dataset(options(docs_dir, out), FakeTeacher(), settings)
    skipped = {item["path"]: item["reason"] for item in json.loads((out / CARD_FILE).read_text())["skipped"]}
    assert "PDF files are not read" in skipped["scan.pdf"]
    assert "not UTF-8" in skipped["latin1.txt"]
