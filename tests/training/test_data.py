"""Chat JSONL validation and the assistant-only loss mask, on the real SmolLM2 chat template."""

from __future__ import annotations

import pytest

from tests.training.conftest import chat, write_jsonl
from training.data import IGNORE_INDEX, DataError, read_examples, tokenize_example

END = "<|im_end|>"


def assistant_text(tokenizer, labels):
    return tokenizer.decode([label for label in labels if label != IGNORE_INDEX])


def test_only_the_assistant_reply_and_its_end_token_carry_labels(tokenizer):
    messages = chat("What colour is the sky?", "Blue, mostly.")["messages"]
    input_ids, labels = tokenize_example(tokenizer, messages, max_length=512)
    assert len(input_ids) == len(labels)
    assert assistant_text(tokenizer, labels) == "Blue, mostly." + END
    # Labels are the input ids themselves where they count (HF shifts them inside the model).
    assert all(label in (IGNORE_INDEX, token) for token, label in zip(input_ids, labels, strict=True))
    # SmolLM2's template adds its default system prompt when there is none: masked like the user turn.
    assert "You are a helpful AI assistant" in tokenizer.decode(input_ids)


def test_multi_turn_labels_every_assistant_turn(tokenizer):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Green."},
    ]
    input_ids, labels = tokenize_example(tokenizer, messages, max_length=512)
    labelled = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
    assert assistant_text(tokenizer, labels) == "Hello." + END + "Green." + END
    # Two separate runs of labels: the user turn between them is masked.
    assert labelled != list(range(labelled[0], labelled[-1] + 1))
    assert "Be brief." in tokenizer.decode(input_ids)
    assert "You are a helpful AI assistant" not in tokenizer.decode(input_ids)


def test_max_length_cuts_ids_and_labels(tokenizer):
    messages = chat("Count to ten.", "one two three four five six seven eight nine ten")["messages"]
    input_ids, labels = tokenize_example(tokenizer, messages, max_length=10)
    assert len(input_ids) == len(labels) == 10
    assert all(label == IGNORE_INDEX for label in labels)  # the reply starts after the 10th token


def test_valid_file_reads_examples_with_their_line(tmp_path):
    parts = [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]
    path = write_jsonl(
        tmp_path / "ok.jsonl",
        [
            chat("a", "b"),
            "",
            {"messages": [{"role": "user", "content": parts}, {"role": "assistant", "content": "x"}]},
        ],
    )
    examples = read_examples(path)
    assert [e.source for e in examples] == [f"{path}:1", f"{path}:3"]
    assert examples[1].messages[0] == {"role": "user", "content": "Hello\nthere"}


def test_every_problem_is_reported_with_its_line_number(tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            chat("fine", "fine"),
            '{"messages": [',
            {"messages": [{"role": "bot", "content": "x"}]},
            {"messages": [{"role": "user", "content": "only a question"}]},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]},
            {"messages": [{"role": "assistant", "content": "no question"}, {"role": "user", "content": "q"}]},
            ["not", "an", "object"],
        ],
    )
    with pytest.raises(DataError) as error:
        read_examples(path)
    message = str(error.value)
    assert "6 problem(s)" in message
    assert f"{path}:2: invalid JSON" in message
    assert f"{path}:3: message 0 has unknown role 'bot'" in message
    assert f"{path}:4: no assistant turn" in message
    assert f"{path}:5: message 1 (assistant) has empty content" in message
    assert f"{path}:6: the first assistant turn has no user turn before it" in message
    assert f"{path}:7: expected an object" in message
    assert f"{path}:1:" not in message


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(DataError, match="no examples"):
        read_examples(path)
