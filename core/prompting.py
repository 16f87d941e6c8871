"""Prompt assembly: pure functions from chat messages and search hits to the messages sent upstream.

Serving uses them for every retrieval request and training uses the same functions for retrieval-aware
(RAFT) examples, so an adapter sees at training time exactly the context format it gets when served.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from core.types import Hit

Message = dict[str, Any]

# Chosen on the demo *dev* questions (eval/datasets/demo_dev.jsonl, not the frozen eval set) with the
# 135M default model: asking for exact copies and a short answer read sources best of four wordings tried.
CONTEXT_HEADER = (
    "Use these sources to answer the user's question in one short sentence. "
    "Copy exact numbers, names and dates from them."
)
LEADING_ROLES = frozenset({"system", "developer"})

# Retrieved text is data, never chat structure. Tokenizers turn `<|im_start|>` inside text into the real
# special token, so a document could otherwise open a fake `system` or `assistant` turn. Covered: ChatML
# and Llama-3 style `<|...|>` tokens, Llama-2/Mistral `[INST]`, `<<SYS>>`, `<s>`, and "Role:" line prefixes.
_SPECIAL_TOKEN = re.compile(r"<\|([^|<>\s]{0,40})\|>")
_BRACKET_MARKERS = re.compile(r"\[(/?INST)\]|<<(/?SYS)>>|</?s>", re.IGNORECASE)
_ROLE_PREFIX = re.compile(
    r"^(\s*)(system|user|assistant|developer|tool|human|ai)(\s*):", re.IGNORECASE | re.MULTILINE
)


def neutralize(text: str) -> str:
    """`text` with chat-template control sequences made inert (visibly, so nothing is silently lost)."""
    text = _SPECIAL_TOKEN.sub(lambda m: f"<{m[1]}>", text)
    text = _BRACKET_MARKERS.sub(lambda m: f"({m[1] or m[2] or m[0].strip('<>/')})", text)
    return _ROLE_PREFIX.sub(lambda m: f"{m[1]}{m[2]}{m[3]} -", text)


def content_text(content: Any) -> str:
    """The text of a message's `content`: a string, or an array of parts whose text parts are joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(
        part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
    )


def last_user_text(messages: Sequence[Message]) -> str:
    """The retrieval query: the text of the last user message, or "" when there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content")).strip()
    return ""


def format_source(number: int, hit: Hit) -> str:
    """One numbered source block: `[n] source — heading` followed by the chunk text."""
    label = hit.chunk.source_id + (f" — {hit.chunk.title}" if hit.chunk.title else "")
    return neutralize(f"[{number}] {label}\n{hit.chunk.text.strip()}")


def build_context_message(hits: Sequence[Hit], header: str | None = None) -> Message:
    """The system message that carries retrieved chunks as numbered sources, best first, under `header`
    (the route's instruction; `CONTEXT_HEADER` by default)."""
    blocks = [format_source(number, hit) for number, hit in enumerate(hits, start=1)]
    return {"role": "system", "content": "\n\n".join([header or CONTEXT_HEADER, *blocks])}


def insert_context(messages: Sequence[Message], context: Message) -> list[Message]:
    """A copy of `messages` with `context` placed right after the caller's leading system/developer turns.

    The caller's own instructions stay first (they set the assistant's behaviour); the sources come
    before the conversation they are about.
    """
    position = 0
    while position < len(messages) and messages[position].get("role") in LEADING_ROLES:
        position += 1
    return [*messages[:position], context, *messages[position:]]


def with_retrieved_context(
    messages: Sequence[Message], hits: Sequence[Hit], header: str | None = None
) -> list[Message]:
    """`messages` with the hits inserted as a sources message; unchanged when there are no hits."""
    if not hits:
        return list(messages)
    return insert_context(messages, build_context_message(hits, header))
