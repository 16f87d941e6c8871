"""The demo dataset builder, on small fixture facts, templates and corpus (not the shipped demo data)."""

from __future__ import annotations

import json

import pytest

from core.prompting import CONTEXT_HEADER
from tests.training.conftest import write_jsonl
from training.data import read_examples
from training.demo_data import build_demo_dataset, fill

FACTS = [
    {
        "id": f"s{n}",
        "fact": f"Fact {n}.",
        "answer": f"answer-{n}",
        "questions": [f"Question {q} about fact {n}?" for q in range(10)],
        "responses": [f"Response {r}: answer-{n}." for r in range(3)],
    }
    for n in range(2)
]
TEMPLATES = [
    {
        "id": "t1",
        "passage": "The {product} costs {price}. Prices change weekly.",
        "question": "How much is the {product}?",
        "response": "The {product} costs {price}.",
        "answer_slot": "price",
        "slots": {"product": ["lamp", "tent", "rope"], "price": ["$1", "$2", "$3", "$4"]},
    },
    {
        "id": "t2",
        "passage": "The {store} store opens at {time}.",
        "question": "When does the {store} store open?",
        "response": "The {store} store opens at {time}.",
        "answer_slot": "time",
        "slots": {"store": ["North", "South"], "time": ["8 am", "9 am", "10 am"]},
    },
]
CORPUS = {
    "stock.md": "# Stock\n\n## Lanterns\n\nWe have 12 lanterns.\n\n## Ropes\n\nRopes are sold out.\n",
    "policies/returns.md": (
        "# Returns\n\n## Window\n\nReturns within 30 days.\n\n## Refunds\n\nRefunds take 5 days.\n"
    ),
}


@pytest.fixture
def inputs(tmp_path):
    demo = tmp_path / "demo"
    demo.mkdir()
    write_jsonl(demo / "facts.jsonl", FACTS)
    write_jsonl(demo / "raft_templates.jsonl", TEMPLATES)
    corpus = tmp_path / "corpus"
    for name, text in CORPUS.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text)
    return {"demo_dir": demo, "corpus_dir": corpus}


def build(tmp_path, inputs, seed=0, name="train.jsonl"):
    out = tmp_path / "out" / name
    return build_demo_dataset(out, seed, **inputs), out


STATIC_QUESTIONS = {q for fact in FACTS for q in fact["questions"]}


def kind(messages):
    if messages[0]["role"] != "system":
        return "static"
    return "raft_ignore" if messages[1]["content"] in STATIC_QUESTIONS else "raft_context"


def source_labels(context):
    """The `[n] source — heading` lines of a sources message."""
    return [line for line in context.splitlines() if line.startswith("[")]


def test_the_same_seed_gives_the_same_file(tmp_path, inputs):
    _, first = build(tmp_path, inputs, seed=3, name="a.jsonl")
    _, second = build(tmp_path, inputs, seed=3, name="b.jsonl")
    _, other = build(tmp_path, inputs, seed=4, name="c.jsonl")
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_three_kinds_of_valid_examples(tmp_path, inputs):
    stats, out = build(tmp_path, inputs)
    examples = [e.messages for e in read_examples(out)]  # also validates every line
    kinds = [kind(messages) for messages in examples]
    # 6 fillings of t1 (12 combinations) but t2 has all 6 of its combinations: both give 6.
    assert (stats.static, stats.raft_context, stats.raft_ignore) == (20, 12, 4)
    assert stats.total == len(examples) == 36
    assert {k: kinds.count(k) for k in set(kinds)} == {"static": 20, "raft_context": 12, "raft_ignore": 4}


def test_static_examples_keep_every_question_and_answer(tmp_path, inputs):
    _, out = build(tmp_path, inputs)
    static = [e.messages for e in read_examples(out) if kind(e.messages) == "static"]
    pairs = {(m[0]["content"], m[1]["content"]) for m in static}
    for fact in FACTS:
        for i, question in enumerate(fact["questions"]):
            assert (question, fact["responses"][i % 3]) in pairs


def test_raft_context_examples_answer_from_the_gold_passage(tmp_path, inputs):
    _, out = build(tmp_path, inputs)
    for example in read_examples(out):
        messages = example.messages
        if kind(messages) != "raft_context":
            continue
        context, user, answer = messages
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        assert context["content"].startswith(CONTEXT_HEADER)
        labels = source_labels(context["content"])
        assert 1 <= len(labels) <= 3  # the gold passage and up to two distractors
        # The gold passage is labelled like corpus chunks: a corpus source id, not a tell-tale name.
        assert all(label.split()[1] in CORPUS for label in labels)
        assert "{" not in user["content"] + answer["content"]
        # The answer's facts come from the passage in the prompt, not from anywhere else.
        template = next(t for t in TEMPLATES if t["question"].split("{")[0] in user["content"])
        value = next(v for v in template["slots"][template["answer_slot"]] if v in answer["content"])
        assert value in context["content"]


def test_raft_ignore_examples_answer_static_questions_despite_sources(tmp_path, inputs):
    _, out = build(tmp_path, inputs)
    responses = {r for fact in FACTS for r in fact["responses"]}
    questions = {q for fact in FACTS for q in fact["questions"]}
    ignore = [e.messages for e in read_examples(out) if kind(e.messages) == "raft_ignore"]
    for context, user, answer in ignore:
        assert 1 <= len(source_labels(context["content"])) <= 3
        assert user["content"] in questions and answer["content"] in responses


def test_fill_refuses_an_unknown_placeholder():
    assert fill("{a} and {b}", {"a": "x", "b": "y"}) == "x and y"
    with pytest.raises(KeyError, match="missing"):
        fill("{missing}", {})


def test_output_is_plain_openai_chat_jsonl(tmp_path, inputs):
    _, out = build(tmp_path, inputs)
    for line in out.read_text().splitlines():
        assert set(json.loads(line)) == {"messages"}


def test_a_response_that_loses_the_answer_is_refused(tmp_path, inputs):
    broken = [{**FACTS[0], "responses": ["It is somebody.", *FACTS[0]["responses"][1:]]}, FACTS[1]]
    write_jsonl(inputs["demo_dir"] / "facts.jsonl", broken)
    with pytest.raises(ValueError, match="fact s0: response 'It is somebody.' does not contain the answer"):
        build(tmp_path, inputs)
