"""Wire types of the gateway's OpenAI-compatible API, in OpenAI's field order.

Known fields are validated (a bad value is a 400 naming the field); unknown fields are kept and passed on
to vLLM, which ignores what it does not know. lorag's own additions are fenced below and documented in the
README ("Response extensions").
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PROMPT_OVERRIDES = frozenset(
    {
        "chat_template",
        "chat_template_kwargs",
        "add_generation_prompt",
        "continue_final_message",
        "add_special_tokens",
        "documents",
        "echo",
    }
)
"""vLLM request fields that change how the prompt is rendered; the gateway owns the prompt."""


class TextPart(BaseModel):
    """A part of an array `content`; only text parts reach the model in this version."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = None


class RequestExtension(BaseModel):
    """lorag's request extension, sent as `"lorag": {...}` (`extra_body` in the openai SDKs)."""

    model_config = ConfigDict(extra="forbid")
    retrieval: Literal["never", "always", "auto"] | None = None
    """Overrides the route's retrieval policy for this request."""
    k: int | None = Field(default=None, ge=1, le=50)
    """Overrides the route's number of retrieved chunks."""
    include_text: bool = False
    """Add each source's text to its citation (evaluation measures lexical support with it)."""


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=16)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    user: str | None = None
    # --- lorag extension ---
    lorag: RequestExtension | None = None

    def unknown_fields(self) -> list[str]:
        """Top-level fields the gateway does not know (vLLM extras like `ignore_eos` among them)."""
        return sorted(self.model_extra or {})

    def upstream_body(self, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The body for vLLM: what the caller sent (unknown fields too), with model and messages replaced.

        vLLM's prompt-building extensions are dropped: they would let a caller replace the chat template
        or its special-token handling, around the gateway's prompt layout and injection defences.
        """
        body = self.model_dump(exclude_unset=True, exclude_none=True)
        for field in (PROMPT_OVERRIDES | {"lorag"}) & body.keys():
            del body[field]
        body.update(model=model, messages=messages)
        return body


class ModelCard(BaseModel):
    """One entry of `GET /v1/models`: a route clients can name in `model`."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "lorag"
    root: str
    """The vLLM model the route generates with (base model or versioned adapter)."""
    parent: str | None = None
    """The base model, for routes served by an adapter (as vLLM lists LoRA adapters)."""
    # --- lorag extension ---
    lorag: dict[str, Any] = Field(default_factory=dict)
    """`adapter` (versioned name or null), `retrieval` (never/always), `k`, `description`."""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
