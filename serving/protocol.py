"""Wire types of the gateway's OpenAI-compatible API, in the order of OpenAI's reference (as vLLM keeps it).

Known fields are validated: a bad value is a 400 whose `param` names the field (`errors.validation_error`
turns pydantic's location into that path, so validators here raise on the field they check and avoid
unions whose branch names would leak into the path). Unknown fields are kept and passed on to vLLM, which
ignores what it does not know; `ChatCompletionRequest.unknown_fields` lists them for logging or a strict
mode. lorag's own additions are fenced below and documented in the README ("Response extensions").

Structured output (`response_format`) and forced tool calls (`tool_choice` naming a function, or
`"required"`) are passed to vLLM, which enforces them with guided decoding, so they work with any model.
`tool_choice="auto"` only produces `tool_calls` when vLLM runs with `--enable-auto-tool-choice` and a
`--tool-call-parser` that fits the model (e.g. `hermes` for Qwen 2.5); otherwise the model answers in text.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

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

MAX_STOP_SEQUENCES = 4
"""OpenAI's limit, and vLLM's default `VLLM_MAX_STOP_STRINGS`."""
INT64 = 2**63
UNSUPPORTED_PARTS = frozenset({"image_url", "input_audio", "file"})
"""Content part types OpenAI defines that a text-only model cannot take."""
UNSUPPORTED_PART_ERROR = "unsupported_content_part"
"""The pydantic error type for those parts, so the error mapping can tell them from malformed input."""


def field_error(field: str, message: str, value: Any) -> ValidationError:
    """A validation error located at a top-level `field`, for checks that read several fields."""
    detail = InitErrorDetails(type=PydanticCustomError("value_error", message), loc=(field,), input=value)
    return ValidationError.from_exception_data("ChatCompletionRequest", [detail])


def joined_text(content: Any) -> Any:
    """A message's `content` with an array of text parts joined into one string (as vLLM joins them).

    Anything else is left for the field's type to reject. Text-only: an image, audio or file part is an
    error naming its type, never silently dropped.
    """
    if not isinstance(content, list):
        return content
    texts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in UNSUPPORTED_PARTS:
            raise PydanticCustomError(
                UNSUPPORTED_PART_ERROR,
                "content part {index} has type '{kind}', which this text-only model does not support",
                {"index": index, "kind": kind},
            )
        # `refusal` parts are how an assistant turn records a refusal; their text is the turn's text.
        key = {"text": "text", "refusal": "refusal"}.get(kind) if isinstance(kind, str) else None
        if key is None or not isinstance(part.get(key), str):
            raise PydanticCustomError(
                "content_part",
                "content part {index} must be a text part: type 'text' with a string `text`",
                {"index": index},
            )
        texts.append(part[key])
    return "\n".join(texts)


class FunctionCall(BaseModel):
    """The function an assistant turn called; `arguments` is a JSON string, as the model produced it."""

    model_config = ConfigDict(extra="allow")
    name: str
    arguments: str


class ToolCall(BaseModel):
    """One tool call recorded in an assistant turn."""

    model_config = ConfigDict(extra="allow")
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    """One chat turn. Array content (text parts) arrives here already joined into a string."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    """Assistant turns: the calls the model made."""
    tool_call_id: str | None = None
    """Tool turns: the call this message answers."""

    @field_validator("content", mode="before")
    @classmethod
    def _join_parts(cls, value: Any) -> Any:
        return joined_text(value)


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    """A JSON Schema for the arguments; guided decoding makes a forced call match it."""
    strict: bool | None = None


class Tool(BaseModel):
    """A function the model may call."""

    model_config = ConfigDict(extra="allow")
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)


class NamedToolChoice(BaseModel):
    """`tool_choice` forcing one declared function."""

    model_config = ConfigDict(extra="allow")
    type: Literal["function"]
    function: NamedFunction


def tool_choice_value(value: Any) -> Any:
    """`"none"`, `"auto"`, `"required"` or a named choice, checked here so a bad value gets one clear
    message at `tool_choice` instead of one error per union branch."""
    if value is None or value in ("none", "auto", "required"):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "tool_choice",
            "must be 'none', 'auto', 'required' or a named choice: type 'function', function.name",
        )
    try:
        return NamedToolChoice.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PydanticCustomError(
            "tool_choice", "{where}: {msg}", {"where": where, "msg": first["msg"]}
        ) from exc


class JsonSchemaFormat(BaseModel):
    """`response_format.json_schema`: the schema the output must match."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    """Named `schema` on the wire; the alias keeps it from shadowing pydantic's `BaseModel.schema`."""
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """`text`, `json_object` (any JSON object) or `json_schema` (JSON matching a schema)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise PydanticCustomError(
                "response_format", "type 'json_schema' needs a `json_schema` object with `name` and `schema`"
            )
        return self


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = None
    """Send a last chunk with the request's token usage."""


class RequestExtension(BaseModel):
    """lorag's request extension, sent as `"lorag": {...}` (`extra_body` in the openai SDKs)."""

    model_config = ConfigDict(extra="forbid")
    retrieval: Literal["never", "always", "auto"] | None = None
    """Overrides the route's retrieval policy for this request."""
    k: int | None = Field(default=None, ge=1, le=50)
    """Overrides the route's number of retrieved chunks."""
    include_text: bool = False
    """Add each source's text to its citation (evaluation measures lexical support with it)."""


Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]
Bias = Annotated[float, Field(ge=-100.0, le=100.0)]
StopString = Annotated[str, Field(min_length=1)]
"""vLLM refuses an empty stop string (it would end every completion at once)."""


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`. Fields vLLM adds (`top_k`, `ignore_eos`, ...) pass through unvalidated."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Bias] | None = None
    """Token id (as a string) → bias added to its logit."""
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=16)
    presence_penalty: Penalty | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = Field(default=None, ge=-INT64, lt=INT64)
    stop: list[StopString] | None = Field(default=None, max_length=MAX_STOP_SEQUENCES)
    """One string or up to four; a single string is sent on as a one-element list."""
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    tools: list[Tool] | None = Field(default=None, min_length=1)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    # --- lorag extension ---
    lorag: RequestExtension | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop_string(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key in value or {}:
            if not key.isdigit():
                raise PydanticCustomError(
                    "logit_bias",
                    "keys must be token ids (non-negative integers), got {key}",
                    {"key": repr(key)},
                )
        return value

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _tool_choice(cls, value: Any) -> Any:
        return tool_choice_value(value)

    @model_validator(mode="after")
    def _fields_agree(self) -> ChatCompletionRequest:
        """Checks that read two fields; each error names the field that must change."""
        if self.top_logprobs and not self.logprobs:
            raise field_error("top_logprobs", "needs `logprobs: true`", self.top_logprobs)
        if self.stream_options is not None and not self.stream:
            raise field_error("stream_options", "only allowed with `stream: true`", None)
        if self.tool_choice is not None and self.tool_choice != "none" and not self.tools:
            raise field_error("tool_choice", "needs `tools`", None)
        if isinstance(self.tool_choice, NamedToolChoice):
            name = self.tool_choice.function.name
            if name not in {tool.function.name for tool in self.tools or []}:
                raise field_error("tool_choice", f"names {name!r}, which is not one of `tools`", name)
        return self

    def unknown_fields(self) -> list[str]:
        """Top-level fields this model does not declare, in request order. vLLM's own extensions
        (`ignore_eos`, `top_k`, ...) are among them: they are passed on, but a strict gateway may refuse."""
        return list(self.model_extra or {})

    def upstream_body(self, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The body for vLLM: what the caller sent (unknown fields too), with model and messages replaced.

        vLLM's prompt-building extensions are dropped: they would let a caller replace the chat template
        or its special-token handling, around the gateway's prompt layout and injection defences.
        """
        body = self.model_dump(exclude_unset=True, exclude_none=True, by_alias=True)
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
    """The model the route generates with: the base model or the adapter version (`demo@v2`)."""
    parent: str | None = None
    """The base model, for routes served by an adapter (as vLLM lists LoRA adapters)."""
    # --- lorag extension ---
    lorag: dict[str, Any] = Field(default_factory=dict)
    """`adapter` (versioned name or null), `retrieval` (never/always), `k`, `description`."""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


NULLABLE_IN_OPENAI = {
    "choice": frozenset({"finish_reason", "logprobs"}),
    "message": frozenset({"content", "refusal"}),
}
"""Fields OpenAI's response schemas allow to be null; vLLM also sends most optional fields as null."""


def _drop_nulls(obj: Any, keep: frozenset[str] = frozenset()) -> None:
    if isinstance(obj, dict):
        for key in [key for key, value in obj.items() if value is None and key not in keep]:
            del obj[key]


def openai_shaped(payload: dict[str, Any]) -> dict[str, Any]:
    """A vLLM completion or chunk made to fit OpenAI's response schema, in place.

    vLLM serialises every optional field (`annotations`, `function_call`, `prompt_tokens_details`, its own
    `stop_reason`, ...), unset ones as null, where OpenAI's schema has them absent; strict clients and
    schema checks reject the nulls. `logprobs.refusal`, which OpenAI requires, is added. Only OpenAI's own
    objects are touched, never lorag's extension.
    """
    _drop_nulls(payload)
    _drop_nulls(payload.get("usage"))
    for choice in payload.get("choices") or []:
        _drop_nulls(choice, NULLABLE_IN_OPENAI["choice"])
        if isinstance(choice.get("logprobs"), dict):
            choice["logprobs"].setdefault("refusal", None)  # required (nullable) by OpenAI, absent in vLLM
        for part in ("message", "delta"):
            _drop_nulls(choice.get(part), NULLABLE_IN_OPENAI["message"])
    return payload
