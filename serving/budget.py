"""Context budget: the prompt, its retrieved sources and the answer must fit the model's context.

Retrieved sources are dropped first, lowest-ranked first; only when the caller's own messages and
`max_tokens` cannot fit with no sources at all is the request refused (400 `context_length_exceeded`, in
OpenAI's words). Tokens are counted with the served model's own chat template, so the count is vLLM's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.prompting import content_text, with_retrieved_context
from core.types import Hit
from serving.errors import ContextLengthError

log = logging.getLogger("lorag.budget")

Message = dict[str, Any]


class TokenCounter(Protocol):
    """Counts the prompt tokens a list of chat messages becomes."""

    def count(self, messages: Sequence[Message], tools: list[dict[str, Any]] | None = None) -> int: ...


class ChatTemplateCounter:
    """Counts with a Hugging Face tokenizer's chat template (the template vLLM renders)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def count(self, messages: Sequence[Message], tools: list[dict[str, Any]] | None = None) -> int:
        # Array contents are flattened to their text, as the text-only model sees them.
        flat = [{**message, "content": content_text(message.get("content"))} for message in messages]
        ids = self.tokenizer.apply_chat_template(flat, tools=tools, tokenize=True, add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # newer transformers return a BatchEncoding
            ids = ids["input_ids"]
        return len(ids)


def load_counter(model_path: str) -> TokenCounter | None:
    """A counter for the model at `model_path` (a directory or a hub id); None, logged, if its tokenizer
    cannot be loaded — vLLM then still refuses over-long prompts, but sources are not trimmed to fit."""
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_path)
    except Exception as exc:  # noqa: BLE001 - any loading failure only disables trimming
        log.warning("no tokenizer for %s (%s): retrieved sources will not be trimmed to fit", model_path, exc)
        return None
    if not getattr(tokenizer, "chat_template", None):
        log.warning("the tokenizer of %s has no chat template: sources will not be trimmed", model_path)
        return None
    return ChatTemplateCounter(tokenizer)


@dataclass(frozen=True)
class Fitted:
    """The messages to send, the sources they hold, and how many sources were dropped to fit."""

    messages: list[Message]
    hits: list[Hit]
    prompt_tokens: int
    trimmed: int


def fit_context(
    messages: Sequence[Message],
    hits: Sequence[Hit],
    counter: TokenCounter,
    context_len: int,
    answer_tokens: int,
    tools: list[dict[str, Any]] | None = None,
    header: str | None = None,
) -> Fitted:
    """Keep as many of the best-ranked `hits` as fit with `answer_tokens` left for the answer."""
    kept = list(hits)
    while True:
        candidate = with_retrieved_context(messages, kept, header)
        tokens = counter.count(candidate, tools)
        if tokens + answer_tokens <= context_len:
            return Fitted(candidate, kept, tokens, len(hits) - len(kept))
        if not kept:
            break
        kept.pop()  # the lowest-ranked source goes first
    dropped = f" (after dropping all {len(hits)} retrieved sources)" if hits else ""
    raise ContextLengthError(
        f"This model's maximum context length is {context_len} tokens. However, you requested "
        f"{tokens + answer_tokens} tokens ({tokens} in the messages{dropped}, {answer_tokens} for the "
        "completion). Please reduce the length of the messages or the completion (max_tokens)."
    )


def model_context_len(model_cards: Sequence[dict[str, Any]], base_model: str) -> int | None:
    """The context length vLLM reports for the base model in `/v1/models` (`max_model_len`)."""
    for card in model_cards:
        if card.get("id") == base_model and isinstance(card.get("max_model_len"), int):
            return int(card["max_model_len"])
    return None


def local_model_path(reference: str, cache_dir: Path) -> str:
    """Where the tokenizer for `reference` is: the pulled packaged model, else the reference itself."""
    from core.models import resolve_model

    try:
        return resolve_model(reference, cache_dir)
    except Exception:  # noqa: BLE001 - not pulled / unknown: let transformers try the name itself
        return reference
