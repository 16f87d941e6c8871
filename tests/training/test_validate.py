"""The training-data validator on the real SmolLM2 chat template: problems by line, summary, strictness."""

from __future__ import annotations

import logging

import pytest

from tests.training.conftest import chat, write_jsonl
from training.data import DataError, tokenize_example
from training.validate import (
    CPU_TOKENS_PER_SECOND,
    format_duration,
    format_report,
    load_training_examples,
    validate_file,
)

LONG_ANSWER = " ".join(["word"] * 200)
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


@pytest.fixture
def messy_file(tmp_path):
    """One line of every kind of problem, between good rows (line numbers in the comments)."""
    return write_jsonl(
        tmp_path / "messy.jsonl",
        [
            chat("q1", "a1"),  # 1 ok
            '{"messages": [',  # 2 invalid_json
            {"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]},  # 3
            {"messages": [{"role": "user", "content": "only a question"}]},  # 4 no_assistant
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]},  # 5
            "",  # 6 blank: not a row
            chat("q1", "a1"),  # 7 duplicate of 1
            chat("long", LONG_ANSWER),  # 8 too_long
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "q1"}]},
                    {"role": "assistant", "content": "a1"},
                ]
            },  # 9 duplicate of 1 once parts are joined  # noqa: E501
            {"messages": "nope"},  # 10 not_a_conversation
            {**chat("q2", "a2"), "tools": TOOLS},  # 11 ok: tools are allowed
            {**chat("q3", "a3"), "tools": [{"name": "bare"}]},  # 12 bad_tools
        ],
    )


def test_every_problem_kind_is_reported_on_its_line(messy_file, tokenizer):
    report = validate_file(messy_file, tokenizer, max_length=128)
    assert [(p.line, p.code) for p in report.problems] == [
        (2, "invalid_json"),
        (3, "unknown_role"),
        (4, "no_assistant"),
        (5, "empty_content"),
        (7, "duplicate"),
        (8, "too_long"),
        (9, "duplicate"),
        (10, "not_a_conversation"),
        (12, "bad_tools"),
    ]
    messages = {p.line: p.message for p in report.problems}
    assert messages[7] == messages[9] == "same messages as line 1"
    assert "over max_length=128" in messages[8]
    assert [e.source for e in report.examples] == [f"{messy_file}:1", f"{messy_file}:11"]
    assert report.examples[1].tools == TOOLS
    assert not report.ok


def test_summary_counts_rows_and_the_kept_examples_tokens(messy_file, tokenizer):
    s = validate_file(messy_file, tokenizer, max_length=128).summary
    assert (s.rows, s.kept, s.skipped, s.duplicates, s.over_length) == (11, 2, 9, 2, 1)
    lengths, assistant = [], 0
    for question, answer in [("q1", "a1"), ("q2", "a2")]:
        input_ids, labels = tokenize_example(tokenizer, chat(question, answer)["messages"], 10_000)
        lengths.append(len(input_ids))
        assistant += sum(label != -100 for label in labels)
    assert s.total_tokens == sum(lengths)
    assert s.assistant_tokens == assistant == 2 * len(tokenizer("a1<|im_end|>")["input_ids"])
    assert (s.min_tokens, s.max_tokens, s.mean_tokens) == (min(lengths), max(lengths), sum(lengths) / 2)


def test_over_length_counts_the_rendered_template_tokens_exactly(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "one.jsonl", [chat("How long?", LONG_ANSWER)])
    rendered = tokenizer.apply_chat_template(chat("How long?", LONG_ANSWER)["messages"], tokenize=True)
    n = len(rendered if isinstance(rendered, list) else rendered["input_ids"])
    assert n > 200  # the template's default system prompt counts too
    assert validate_file(path, tokenizer, max_length=n).ok
    [problem] = validate_file(path, tokenizer, max_length=n - 1).problems
    assert (problem.line, problem.code) == (1, "too_long")


def test_time_estimate_is_tokens_times_epochs_over_throughput(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "ok.jsonl", [chat("a", "b"), chat("c", "d")])
    default = validate_file(path, tokenizer, max_length=512).summary
    assert default.tokens_per_second == CPU_TOKENS_PER_SECOND == 280.0
    assert default.estimated_seconds == pytest.approx(default.total_tokens / 280.0)
    s = validate_file(path, tokenizer, max_length=512, tokens_per_second=10.0, epochs=3).summary
    assert s.estimated_seconds == pytest.approx(s.total_tokens * 3 / 10.0)


def test_report_lists_problems_then_the_summary(messy_file, tokenizer):
    text = format_report(validate_file(messy_file, tokenizer, max_length=128, epochs=2))
    assert f"{messy_file}:2: [invalid_json] invalid JSON" in text
    assert f"{messy_file}:7: [duplicate] same messages as line 1" in text
    assert "11 rows, 2 kept, 9 skipped (2 duplicates, 1 over the length limit)" in text
    assert "for 2 epoch(s) at 280 tokens/s" in text


@pytest.mark.parametrize(("seconds", "text"), [(42.4, "42s"), (185, "3m 05s"), (7620, "2h 07m")])
def test_durations_read_naturally(seconds, text):
    assert format_duration(seconds) == text


def test_strict_fails_with_every_problem(messy_file, tokenizer):
    with pytest.raises(DataError) as error:
        load_training_examples([messy_file], tokenizer, max_length=128, strict=True)
    message = str(error.value)
    assert message.startswith("9 problem(s)")
    assert f"{messy_file}:2: invalid JSON" in message and f"{messy_file}:12: tool 0" in message


def test_default_skips_bad_rows_and_says_how_many(messy_file, tokenizer, caplog):
    with caplog.at_level(logging.WARNING, logger="training.validate"):
        examples = load_training_examples([messy_file], tokenizer, max_length=128, strict=False)
    assert [e.messages[0]["content"] for e in examples] == ["q1", "q2"]
    assert "skipped 9 bad row(s)" in caplog.text


def test_nothing_left_is_an_error_even_when_not_strict(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "bad.jsonl", ["{oops"])
    with pytest.raises(DataError, match="no usable examples"):
        load_training_examples([path], tokenizer, max_length=128, strict=False)
