"""Training data: OpenAI chat JSONL → validated examples → token ids with an assistant-only loss mask.

The file format is the one OpenAI fine-tuning uses, one conversation a line: `{"messages": [...]}`, with an
optional `tools` list (function definitions, passed to the chat template as a request's `tools` would be).
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
from core.textfiles import lines

ROLES = frozenset({"system", "user", "assistant"})
IGNORE_INDEX = -100
"""The label that `torch.nn.functional.cross_entropy` (and so every HF causal LM) skips."""


class DataError(ValueError):
    """A training file has problems; the message lists each one as `path:line: problem`."""


Tools = list[dict[str, Any]] | None
"""An example's optional OpenAI `tools` list."""
Problem = tuple[str, str]
"""A problem found in one line: a short code (e.g. `unknown_role`) and a message for people."""


@dataclass(frozen=True)
class Example:
    """One training conversation and where it came from."""

    messages: list[dict[str, str]]
    """Chat messages with `role` and plain-string `content` (text parts already joined)."""
    source: str
    """`path:line` of the JSONL line, for error messages."""
    tools: list[dict[str, Any]] | None = None
    """The line's `tools` (OpenAI function definitions), rendered by templates that show tools."""


class ChatTokenizer(Protocol):
    """The part of a Hugging Face fast tokenizer that tokenisation needs."""

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...

    def __call__(self, text: str, **kwargs: Any) -> Any: ...


def read_examples(path: Path) -> list[Example]:
    """Read and validate one chat JSONL file; raise `DataError` listing every problem with its line number."""
    examples: list[Example] = []
    problems: list[str] = []
    for number, line in lines(path):
        if not line.strip():
            continue
        source = f"{path}:{number}"
        example, line_problems = parse_example(line, source)
        problems.extend(f"{source}: {message}" for _, message in line_problems)
        if example is not None:
            examples.append(example)
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
    example, problems = parse_example(line, "")
    return (example.messages if example else []), [message for _, message in problems]


def parse_example(line: str, source: str) -> tuple[Example | None, list[Problem]]:
    """One JSONL line as an `Example` (None when it has problems) and its coded problems."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return None, [("invalid_json", f"invalid JSON ({error.msg} at column {error.colno})")]
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        return None, [("not_a_conversation", 'expected an object with a "messages" list')]
    raw = record["messages"]
    problems = [
        problem for index, message in enumerate(raw) for problem in coded_message_problems(index, message)
    ]
    problems += tools_problems(record.get("tools"))
    if problems:
        return None, problems
    messages = [{"role": m["role"], "content": content_text(m["content"])} for m in raw]
    problems = coded_conversation_problems(messages)
    return (None if problems else Example(messages, source, record.get("tools"))), problems


def message_problems(index: int, message: Any) -> list[str]:
    """What is wrong with one message (an object with a known role and non-empty text content)."""
    return [text for _, text in coded_message_problems(index, message)]


def coded_message_problems(index: int, message: Any) -> list[Problem]:
    """`message_problems` with their codes: `not_an_object`, `unknown_role`, `empty_content`."""
    if not isinstance(message, dict):
        return [("not_an_object", f"message {index} is not an object")]
    role = message.get("role")
    if role not in ROLES:
        # Tool calls need a template that renders them and a mask over the call tokens: not supported yet.
        hint = " (tool-call turns are not supported for training)" if role == "tool" else ""
        return [
            (
                "unknown_role",
                f"message {index} has unknown role {role!r} (expected one of {sorted(ROLES)}){hint}",
            )
        ]
    content = message.get("content")
    if not isinstance(content, str | list) or not content_text(content).strip():
        return [("empty_content", f"message {index} ({role}) has empty content")]
    return []


def tools_problems(tools: Any) -> list[Problem]:
    """What is wrong with an optional `tools` list: each entry must be a function with a name."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        return [("bad_tools", '"tools" must be a list')]
    return [
        ("bad_tools", f'tool {index} is not {{"type": "function", "function": {{"name": ...}}}}')
        for index, tool in enumerate(tools)
        if not (
            isinstance(tool, dict)
            and tool.get("type") == "function"
            and isinstance(tool.get("function"), dict)
            and isinstance(tool["function"].get("name"), str)
        )
    ]


def conversation_problems(messages: Sequence[dict[str, str]]) -> list[str]:
    """What is wrong with the conversation as a whole: it needs a user turn before an assistant turn."""
    return [text for _, text in coded_conversation_problems(messages)]


def coded_conversation_problems(messages: Sequence[dict[str, str]]) -> list[Problem]:
    """`conversation_problems` with their codes: `no_assistant`, `no_user_first`."""
    roles = [message["role"] for message in messages]
    if "assistant" not in roles:
        return [("no_assistant", "no assistant turn (nothing to learn from)")]
    if "user" not in roles[: roles.index("assistant")]:
        return [("no_user_first", "the first assistant turn has no user turn before it")]
    return []


def assistant_spans(
    tokenizer: ChatTokenizer, messages: Sequence[dict[str, str]], tools: Tools = None
) -> tuple[str, list[range]]:
    """The rendered conversation and the character ranges of each assistant reply, end-of-turn included.

    Each range runs from where the generation prompt for that turn ends to where the rendered turn ends,
    both found by rendering prefixes of the conversation with the chat template. Trailing whitespace after
    the end-of-turn token is left out: generation stops at that token, so the model never produces it.
    """
    text = render(tokenizer, messages, tools=tools)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(rendered_prefix(tokenizer, messages, text, index, generation_prompt=True, tools=tools))
        end = len(rendered_prefix(tokenizer, messages, text, index + 1, generation_prompt=False, tools=tools))
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
    tools: Tools = None,
) -> str:
    """The rendering of the first `count` messages, checked to be a prefix of the full rendering `text`.

    The check matters: templates that rewrite earlier turns (e.g. stripping reasoning from past replies)
    would make the mask point at the wrong characters, and training on those silently is worse than failing.
    """
    prefix = render(tokenizer, messages[:count], add_generation_prompt=generation_prompt, tools=tools)
    if not text.startswith(prefix):
        raise DataError(
            f"the chat template renders the first {count} message(s) differently from the full "
            "conversation, so assistant tokens cannot be located"
        )
    return prefix


def tokenize_example(
    tokenizer: ChatTokenizer, messages: Sequence[dict[str, str]], max_length: int, tools: Tools = None
) -> tuple[list[int], list[int]]:
    """Token ids of the conversation and labels that are `IGNORE_INDEX` except on assistant tokens.

    Both are cut to `max_length`. Special tokens come from the template itself, so none are added here.
    `tools` go to the template as a request's would (templates without tool support ignore them).
    """
    text, spans = assistant_spans(tokenizer, messages, tools)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(encoding["input_ids"])
    labels = [
        token
        if any(start >= span.start and end <= span.stop for span in spans) and end > start
        else IGNORE_INDEX
        for token, (start, end) in zip(input_ids, encoding["offset_mapping"], strict=True)
    ]
    return input_ids[:max_length], labels[:max_length]
