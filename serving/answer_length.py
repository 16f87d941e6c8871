"""How long an answer may be: each route's default and cap on generated tokens (pure functions).

Stock clients (the openai SDK, LangChain's ChatOpenAI) send no `max_tokens`; vLLM would then generate to
the end of the context (minutes on a CPU, holding a slot). A request without `max_tokens` /
`max_completion_tokens` gets its route's default instead, and no request generates more than the route's
cap: a larger one is clamped, and the response's `lorag.max_tokens_capped` says so. The context budget
reserves the same number of tokens for the answer, so trimming and generation agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LENGTH_FIELDS = ("max_completion_tokens", "max_tokens")
"""The request fields that bound the answer; vLLM reads `max_completion_tokens` first, as OpenAI does."""


@dataclass(frozen=True)
class AnswerLength:
    """A route's limits on generated tokens."""

    default: int
    """Sent to vLLM when a request sets no `max_tokens` / `max_completion_tokens`."""
    cap: int
    """The most a request may ask for; more is clamped to this."""

    def __post_init__(self) -> None:
        if not 1 <= self.default <= self.cap:
            raise ValueError(f"the default answer length ({self.default}) must be 1..cap ({self.cap})")


@dataclass(frozen=True)
class AnswerLimit:
    """The answer length one request runs under."""

    tokens: int
    """What vLLM is told to generate at most."""
    requested: int | None
    """What the request asked for (None: nothing, the route's default applies)."""
    cap: int

    @property
    def capped(self) -> bool:
        """The request asked for more than the cap and was clamped."""
        return self.requested is not None and self.requested > self.cap

    def report(self) -> dict[str, Any]:
        """The `lorag` extension's fields: `max_tokens`, and `max_tokens_capped` when clamped."""
        fields: dict[str, Any] = {"max_tokens": self.tokens}
        if self.capped:
            fields["max_tokens_capped"] = {"requested": self.requested, "cap": self.cap}
        return fields


def answer_limit(body: dict[str, Any], length: AnswerLength) -> AnswerLimit:
    """The limit for a request whose upstream `body` may set `max_completion_tokens` or `max_tokens`."""
    requested = next((body[name] for name in LENGTH_FIELDS if body.get(name) is not None), None)
    if requested is None:
        return AnswerLimit(length.default, None, length.cap)
    return AnswerLimit(min(requested, length.cap), requested, length.cap)


def limited(body: dict[str, Any], limit: AnswerLimit) -> dict[str, Any]:
    """`body` with its length fields set to `limit` (the default as `max_tokens` when none was sent)."""
    fields = [name for name in LENGTH_FIELDS if body.get(name) is not None] or ["max_tokens"]
    return {**body, **dict.fromkeys(fields, limit.tokens)}
