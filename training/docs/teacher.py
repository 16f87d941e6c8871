"""The teacher: any OpenAI-compatible chat endpoint, reached by URL only, behind a one-method Protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from core.prompting import Message
from core.settings import TeacherSettings
from training.docs.errors import TeacherError

if TYPE_CHECKING:
    from openai import OpenAI


@dataclass(frozen=True)
class GenerationParams:
    """How one call samples; part of the call's cache key."""

    temperature: float
    max_tokens: int
    seed: int | None = None
    """Asked of servers that honour it (vLLM does), so that a sampled call can be reproduced."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form hashed into cache keys."""
        return asdict(self)


class Teacher(Protocol):
    """Something that completes a chat: the real endpoint, or a fake in tests."""

    @property
    def identity(self) -> str:
        """What the cache keys on: a different model or endpoint must not reuse another's answers."""
        ...

    def complete(self, messages: Sequence[Message], params: GenerationParams) -> str:
        """The assistant's reply text ("" when there is none); `TeacherError` when the call fails."""
        ...


class OpenAITeacher:
    """A chat endpoint spoken to with the official `openai` client (built on first use: cheap to create)."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 2,
        identity: str | None = None,
    ) -> None:
        """`identity` replaces `model@url` as the cache key, e.g. for a server started on a random port."""
        self.url = url.rstrip("/")
        self.model = model
        self._identity = identity
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._client: OpenAI | None = None

    @property
    def identity(self) -> str:
        """`model@url`, unless given."""
        return self._identity or f"{self.model}@{self.url}"

    def complete(self, messages: Sequence[Message], params: GenerationParams) -> str:
        """One chat completion; transport and HTTP errors become `TeacherError` naming the endpoint."""
        import openai

        if self._client is None:
            # A local server without keys still needs some string: the client refuses an empty key.
            self._client = openai.OpenAI(
                base_url=self.url,
                api_key=self._api_key or "unused",
                timeout=self._timeout_s,
                max_retries=self._max_retries,
            )
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=list(messages),  # type: ignore[arg-type]
                temperature=params.temperature,
                max_tokens=params.max_tokens,
                seed=params.seed,
            )
        except openai.APIError as exc:
            raise TeacherError(f"teacher {self.identity} failed: {exc}") from exc
        if not response.choices:
            return ""
        return response.choices[0].message.content or ""


class CachedOnlyTeacher:
    """The teacher named `identity` when the cache holds every reply a run needs: nothing is called (the
    plan says so first), so no server has to be reached or started."""

    def __init__(self, identity: str) -> None:
        self.identity = identity

    def complete(self, messages: Sequence[Message], params: GenerationParams) -> str:
        raise RuntimeError(
            f"{self.identity}: the plan said every teacher call was cached"
        )  # a bug if reached


def open_teacher(settings: TeacherSettings) -> OpenAITeacher:
    """The teacher the settings describe (its API key read through the settings)."""
    try:
        key = settings.api_key()
    except ValueError as exc:
        raise TeacherError(str(exc)) from None
    return OpenAITeacher(settings.url, settings.model, key, settings.timeout_s)
