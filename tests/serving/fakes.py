"""Deterministic stand-ins for vLLM and the index, for handler-level tests (never shipped)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from core.types import Chunk, Hit, ModelRef
from serving.errors import UpstreamUnavailableError
from serving.routing import ServedAdapter

BASE = "SmolLM2-135M-Instruct"
"""The base model's served name in these tests."""


def served(name: str, path: str) -> ServedAdapter:
    """A registered adapter version as the gateway serves it: `served("demo@v1", "/adapters/demo/v1")`."""
    return ServedAdapter(ModelRef.parse(name), path)


class FakeRegistry:
    """An `AdapterSource` holding fixed versions; `aliases` maps an adapter to its current version."""

    def __init__(self, adapters: Iterable[ServedAdapter], aliases: dict[str, str] | None = None) -> None:
        self.adapters = {adapter.ref: adapter for adapter in adapters}
        self.aliases = aliases or {}

    def version(self, name: str, version: str) -> ServedAdapter | None:
        return self.adapters.get(ModelRef(name, version))

    def versions(self, name: str) -> list[str]:
        return [str(ref.version) for ref in self.adapters if ref.name == name]

    def current(self, name: str) -> ServedAdapter | None:
        alias = self.aliases.get(name)
        return self.version(name, alias) if alias else None


class FakeUpstream:
    """Echoes the last user message; records every body it was sent."""

    def __init__(self, down: bool = False) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.loaded: list[tuple[str, str]] = []
        """(served name, path) of every load call, in order."""
        self.unloaded: list[str] = []
        self.down = down

    async def load_adapter(self, served_name: str, path: str) -> None:
        self.loaded.append((served_name, path))

    async def unload_adapter(self, served_name: str) -> None:
        self.unloaded.append(served_name)

    async def models(self) -> list[dict[str, Any]]:
        return [{"id": BASE}, *({"id": name} for name, _ in self.loaded if name not in self.unloaded)]

    def _answer(self, body: dict[str, Any]) -> str:
        return f"echo: {body['messages'][-1]['content']}"

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(body)
        if self.down:
            raise UpstreamUnavailableError("vLLM server unreachable: connection refused")
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self._answer(body)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
        }

    async def stream_chat(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        self.bodies.append(body)
        if self.down:
            raise UpstreamUnavailableError("vLLM server unreachable: connection refused")
        words = self._answer(body).split(" ")
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
        for i, word in enumerate(words):
            text = word if i == 0 else " " + word
            yield {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        if (body.get("stream_options") or {}).get("include_usage"):  # as vLLM: a last chunk, no choices
            usage = {"prompt_tokens": 10, "completion_tokens": len(words), "total_tokens": 10 + len(words)}
            yield {**base, "choices": [], "usage": usage}


class FakeSearcher:
    """Returns fixed hits for every query."""

    snapshot_id = "20260101T000000Z-abc123"

    def __init__(self) -> None:
        self.queries: list[tuple[str, int]] = []
        self.options: list[dict] = []
        self.hits = [
            Hit(
                Chunk(
                    "c1",
                    "pricing.md",
                    "The Driftglass 3 tent costs $319.",
                    0,
                    "Tents",
                    {"content_hash": "h1"},
                ),
                0.81,
            ),
            Hit(Chunk("c2", "stock.md", "Port Osric has 412 Sunmoth bags.", 1, "Port Osric"), 0.52),
        ]

    def current(self) -> FakeSearcher:
        return self

    def search(self, query: str, k: int, **options) -> list[Hit]:  # type: ignore[no-untyped-def]
        self.options.append(options)
        self.queries.append((query, k))
        return self.hits[:k]


class ScoredSearcher(FakeSearcher):
    """Hits carrying a dense cosine, as the real dense and hybrid searches report."""

    def __init__(self, cosine: float) -> None:
        super().__init__()
        self.hits = [Hit(h.chunk, h.score, {"dense": cosine}) for h in self.hits]


class WordCounter:
    """One token per whitespace word of every message."""

    def count(self, messages, tools=None):  # type: ignore[no-untyped-def]
        return sum(len(str(message.get("content", "")).split()) for message in messages)
