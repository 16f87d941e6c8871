"""Counterfactual reading examples: the fact's answer changed in its chunk, the reply read from the source."""

from __future__ import annotations

import random

from core.prompting import CONTEXT_HEADER
from core.types import Chunk, Hit
from training.data import read_examples
from training.docs import RaftSource, build_dataset
from training.docs.counterfactual import (
    MONTHS,
    CounterfactualSource,
    altered_value,
    counterfactual_records,
    readings,
)
from training.docs.outputs import TRAIN_FILE
from training.docs.pairs import Pair, Passage
from training.docs.spans import Span
from training.docs.text import Vocabulary

from .conftest import FakeTeacher, options

NOTICES = ["The boat hall is closed on Mondays.", "Fees went up by 5%.", "The quay is icy."]
INDEX = [Chunk(f"n{i}", f"notices/{i}.md", text, i, "Notice") for i, text in enumerate(NOTICES)]


def search(query: str, k: int) -> list[Hit]:
    return [Hit(chunk, 0.5 - 0.1 * rank) for rank, chunk in enumerate(INDEX[:k])]


def span(text: str, kind: str) -> Span:
    return Span(text, 0, len(text), kind)


def test_numbers_keep_their_shape_and_change_their_value():
    rng = random.Random(0)
    for _ in range(50):
        value = altered_value(span("412", "number"), rng, [], "")
        assert value is not None and value.isdigit() and len(value) == 3 and value != "412"
        days = altered_value(span("thirty days", "number"), rng, [], "")
        assert days is not None and days.endswith(" days") and days != "thirty days"
        assert days.split()[0] != "one"
    assert altered_value(span("one day", "number"), rng, [], "") is None  # "two day" is not English
    assert altered_value(span("dozen times", "number"), rng, [], "") is None


def test_codes_months_and_names_get_another_value_of_their_kind():
    rng = random.Random(1)
    code = altered_value(span("Form LX-47", "name"), rng, [], "")
    assert code is not None and code.startswith("Form ") and code != "Form LX-47"
    assert code[5:7].isupper() and code[7] == "-" and code[8:].isdigit()
    assert altered_value(span("October", "name"), rng, [], "") in MONTHS
    names = ["Tidewrack House", "Bollard", "Ansel Brightwood", "Grey Heron"]
    for _ in range(20):
        value = altered_value(span("Edda Marchetti-Holm", "name"), rng, names, "Ansel Brightwood coaches.")
        assert value in ("Tidewrack House", "Grey Heron")  # two words, and not already in the chunk


def _pairs() -> list[Pair]:
    sentences = (
        "The boat hall of Tidewrack House holds twelve boats.",
        "The club mascot is a grey seal named Bollard.",
        "Lessons cost 40 crowns.",
    )
    passage = Passage(Chunk("c1", "club.md", " ".join(sentences), 0, "The club"), "Club", sentences)
    coach = ("The head coach is Ansel Brightwood.",)
    other = Passage(Chunk("c2", "people.md", coach[0], 0, "People"), "People", coach)
    return [
        Pair("Who is the head coach?", "Ansel Brightwood", coach[0], coach[0], other, "rule:pattern"),
        Pair(
            "How many boats does the boat hall hold?",
            "twelve",
            sentences[0],
            sentences[0],
            passage,
            "teacher",
        ),  # fmt: skip
        Pair(
            "What is the club mascot called?", "Bollard", sentences[1], sentences[1], passage, "rule:pattern"
        ),  # fmt: skip
        Pair(
            "Fill in the blank: The club mascot is a grey seal named ____.",
            "Bollard",
            sentences[1],
            sentences[1],
            passage,
            "rule:cloze",
        ),  # fmt: skip
    ]


def test_readings_put_the_altered_answer_in_the_reply_and_the_source():
    pairs = _pairs()
    vocab = Vocabulary.build([s for p in pairs for s in p.passage.sentences])
    found = readings(pairs, frozenset(), vocab, draws_per_fact=2)
    assert found == readings(pairs, frozenset(), vocab, draws_per_fact=2)  # deterministic
    questions = {reading.question for reading in found}
    assert not any(q.startswith("Fill in the blank") for q in questions)  # blanks are not asked with sources
    # "Lessons cost 40 crowns." is no training fact, but its number is asked about as well.
    assert any(reading.original == "40" for reading in found)
    assert {reading.original for reading in found} == {"twelve", "Bollard", "40", "Ansel Brightwood"}
    assert any(r.question == "Lessons cost how many crowns?" for r in found)
    for reading in found:
        assert reading.value != reading.original
        assert reading.value in reading.reply and reading.original not in reading.reply
        assert reading.reply in reading.chunk.text and reading.original not in reading.chunk.text
        assert reading.value not in reading.question


def test_readings_skip_eval_facts():
    pairs = _pairs()
    vocab = Vocabulary.build([s for p in pairs for s in p.passage.sentences])
    every = readings(pairs, frozenset(), vocab)
    lessons = next(r.fact for r in every if r.original == "40")
    assert not any(r.original == "40" for r in readings(pairs, frozenset({lessons}), vocab))
    assert readings(pairs, frozenset(), vocab, is_leak=lambda q: True)[-1].original != "40"


def test_records_hold_the_altered_chunk_among_distractors():
    pairs = _pairs()
    found = readings(pairs, frozenset(), Vocabulary.build([s for p in pairs for s in p.passage.sentences]))
    records = counterfactual_records(found, CounterfactualSource(search))
    assert len(records) == len(found)
    for record, reading in zip(records, found, strict=True):
        system, user, assistant = record["messages"]
        assert system["content"].startswith(CONTEXT_HEADER) and reading.chunk.text in system["content"]
        assert (user["content"], assistant["content"]) == (reading.question, reading.reply)


def test_build_dataset_adds_counterfactual_examples(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    result = build_dataset(options(docs_dir, out), FakeTeacher(), settings, raft=RaftSource(search))
    assert result.counterfactual_examples > 0
    examples = read_examples(out / TRAIN_FILE)
    assert len(examples) == result.train_examples
    static_replies = {e.messages[-1]["content"] for e in examples if e.messages[0]["role"] != "system"}
    altered = [e for e in examples[-result.counterfactual_examples :]]
    for example in altered:
        context, reply = example.messages[0]["content"], example.messages[-1]["content"]
        assert reply in context and reply not in static_replies  # read from the source, not remembered
    eval_sentences = {item["metadata"]["sentence"] for item in result.split.items}
    assert not any(e.messages[-1]["content"] in eval_sentences for e in altered)
    without = options(docs_dir, tmp_path / "none", counterfactual_per_fact=0)
    none = build_dataset(without, FakeTeacher(), settings, RaftSource(search))
    assert none.counterfactual_examples == 0
