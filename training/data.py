"""Training data: OpenAI chat JSONL → validated examples → token ids with an assistant-only loss mask.

The file format is the one OpenAI fine-tuning uses, one conversation a line: `{"messages": [...]}`.
Tokenisation goes through the tokenizer's own chat template, the same one vLLM applies when it serves the
adapter, so the model is trained on exactly the token sequence it will see at inference time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.prompting import content_text

ROLES = frozenset({"system", "user", "assistant"})
IGNORE_INDEX = -100
"""The label that `torch.nn.functional.cross_entropy` (and so every HF causal LM) skips."""


class DataError(ValueError):
    """A training file has problems; the message lists each one as `path:line: problem`."""


@dataclass(frozen=True)
class Example:
    """One training conversation and where it came from."""

    messages: list[dict[str, str]]
    """Chat messages with `role` and plain-string `content` (text parts already joined)."""
    source: str
    """`path:line` of the JSONL line, for error messages."""


class ChatTokenizer(Protocol):
    """The part of a Hugging Face fast tokenizer that tokenisation needs."""

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...

    def __call__(self, text: str, **kwargs: Any) -> Any: ...


def read_examples(path: Path) -> list[Example]:
    """Read and validate one chat JSONL file; raise `DataError` listing every problem with its line number."""
    examples: list[Example] = []
    problems: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            source = f"{path}:{number}"
            messages, line_problems = parse_line(line)
            problems.extend(f"{source}: {problem}" for problem in line_problems)
            if not line_problems:
                examples.append(Example(messages, source))
    if problems:
        raise DataError(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(problems))
    if not examples:
        raise DataError(f"{path} has no examples")
    return examples


def read_all(paths: Iterable[Path]) -> list[Example]:
    """The examples of several files, in order."""
    return [example for path in paths for example in read_examples(path)]


def parse_line(line: str) -> tuple[list[dict[str, str]], list[str]]:
    """Parse one JSONL line into normalised messages, and the problems found (empty when valid)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return [], [f"invalid JSON ({error.msg} at column {error.colno})"]
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        return [], ['expected an object with a "messages" list']
    raw = record["messages"]
    problems = [problem for index, message in enumerate(raw) for problem in message_problems(index, message)]
    if problems:
        return [], problems
    messages = [{"role": m["role"], "content": content_text(m["content"])} for m in raw]
    return messages, conversation_problems(messages)


def message_problems(index: int, message: Any) -> list[str]:
    """What is wrong with one message (an object with a known role and non-empty text content)."""
    if not isinstance(message, dict):
        return [f"message {index} is not an object"]
    role = message.get("role")
    if role not in ROLES:
        return [f"message {index} has unknown role {role!r} (expected one of {sorted(ROLES)})"]
    content = message.get("content")
    if not isinstance(content, str | list) or not content_text(content).strip():
        return [f"message {index} ({role}) has empty content"]
    return []


def conversation_problems(messages: Sequence[dict[str, str]]) -> list[str]:
    """What is wrong with the conversation as a whole: it needs a user turn before an assistant turn."""
    roles = [message["role"] for message in messages]
    if "assistant" not in roles:
        return ["no assistant turn (nothing to learn from)"]
    if "user" not in roles[: roles.index("assistant")]:
        return ["the first assistant turn has no user turn before it"]
    return []


def assistant_spans(tokenizer: ChatTokenizer, messages: Sequence[dict[str, str]]) -> tuple[str, list[range]]:
    """The rendered conversation and the character ranges of each assistant reply, end-of-turn included.

    Each range runs from where the generation prompt for that turn ends to where the rendered turn ends,
    both found by rendering prefixes of the conversation with the chat template. Trailing whitespace after
    the end-of-turn token is left out: generation stops at that token, so the model never produces it.
    """
    text = render(tokenizer, messages)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(rendered_prefix(tokenizer, messages, text, index, generation_prompt=True))
        end = len(rendered_prefix(tokenizer, messages, text, index + 1, generation_prompt=False))
        end = start + len(text[start:end].rstrip())
        spans.append(range(start, end))
    return text, spans


def render(tokenizer: ChatTokenizer, messages: Sequence[dict[str, str]], **kwargs: Any) -> str:
    """The conversation as the chat template writes it (a string, not tokens)."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, **kwargs)


def rendered_prefix(
    tokenizer: ChatTokenizer,
    messages: Sequence[dict[str, str]],
    text: str,
    count: int,
    generation_prompt: bool,
) -> str:
    """The rendering of the first `count` messages, checked to be a prefix of the full rendering `text`.

    The check matters: templates that rewrite earlier turns (e.g. stripping reasoning from past replies)
    would make the mask point at the wrong characters, and training on those silently is worse than failing.
    """
    prefix = render(tokenizer, messages[:count], add_generation_prompt=generation_prompt)
    if not text.startswith(prefix):
        raise DataError(
            f"the chat template renders the first {count} message(s) differently from the full "
            "conversation, so assistant tokens cannot be located"
        )
    return prefix


def tokenize_example(
    tokenizer: ChatTokenizer, messages: Sequence[dict[str, str]], max_length: int
) -> tuple[list[int], list[int]]:
    """Token ids of the conversation and labels that are `IGNORE_INDEX` except on assistant tokens.

    Both are cut to `max_length`. Special tokens come from the template itself, so none are added here.
    """
    text, spans = assistant_spans(tokenizer, messages)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(encoding["input_ids"])
    labels = [
        token
        if any(start >= span.start and end <= span.stop for span in spans) and end > start
        else IGNORE_INDEX
        for token, (start, end) in zip(input_ids, encoding["offset_mapping"], strict=True)
    ]
    return input_ids[:max_length], labels[:max_length]
