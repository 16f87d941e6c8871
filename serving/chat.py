"""The chat completions handler: route → (retrieve) → prompt → vLLM → response with citations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.prompting import last_user_text, with_retrieved_context
from core.types import Citation, Hit
from retrieval.errors import RetrievalError
from serving.errors import GatewayError, NotFoundError, UpstreamUnavailableError, error_body
from serving.live_index import SnapshotSearcher
from serving.protocol import ChatCompletionRequest
from serving.routing import AdapterRef, Route, pin_route, select_route, split_pin
from serving.upstream import Upstream


class Searcher(Protocol):
    """The index as the handler sees it: the snapshot to use for one request (it may change between)."""

    def current(self) -> SnapshotSearcher: ...


AdapterLookup = Callable[[str, str], AdapterRef | None]
"""(adapter name, version) → the registered version, or None."""


@dataclass
class PreparedChat:
    """A request turned into an upstream body plus what the response must report."""

    route: Route
    body: dict[str, Any]
    citations: list[dict[str, Any]] = field(default_factory=list)
    extension: dict[str, Any] = field(default_factory=dict)

    def decorate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Report the route name (not vLLM's internal model name) and lorag's extension fields."""
        payload["model"] = self.route.name
        payload["citations"] = self.citations
        payload["lorag"] = self.extension
        return payload


def citations_for(hits: Sequence[Hit], snapshot_id: str) -> list[dict[str, Any]]:
    """The `citations` extension: one entry per numbered source in the prompt."""
    return [
        Citation(
            index,
            hit.chunk.source_id,
            hit.chunk.chunk_id,
            round(hit.score, 4),
            snapshot_id,
            str(hit.chunk.metadata.get("content_hash", "")),
        ).to_dict()
        for index, hit in enumerate(hits, start=1)
    ]


class ChatHandler:
    """Serves `POST /v1/chat/completions` for every route."""

    def __init__(
        self,
        routes: dict[str, Route],
        upstream: Upstream,
        searcher: Searcher | None,
        adapter_version: AdapterLookup | None = None,
    ) -> None:
        """`adapter_version(name, version)` finds a registered adapter version for `model="route@vN"`."""
        self.routes = routes
        self.upstream = upstream
        self.searcher = searcher
        self.adapter_version = adapter_version
        self._loaded = {route.adapter.served_name for route in routes.values() if route.adapter}
        self._loading = asyncio.Lock()

    async def resolve(self, model: str) -> Route:
        """The route a request names; `route@vN` pins its adapter to version vN (loaded on first use)."""
        name, version = split_pin(model)
        route = select_route(self.routes, name)
        if version is None:
            return route
        if route.adapter is None or self.adapter_version is None:
            raise NotFoundError(
                f"route {name!r} has no adapter to pin to {version!r}", param="model", code="model_not_found"
            )
        adapter_name = route.adapter.served_name.partition("@")[0]
        adapter = self.adapter_version(adapter_name, version)
        if adapter is None:
            raise NotFoundError(
                f"adapter {adapter_name!r} has no version {version!r}", param="model", code="model_not_found"
            )
        async with self._loading:  # one load per version, however many requests ask at once
            if adapter.served_name not in self._loaded:
                await self.upstream.load_adapter(adapter.served_name, adapter.path)
                self._loaded.add(adapter.served_name)
        return pin_route(route, model, adapter)

    async def prepare(self, request: ChatCompletionRequest) -> PreparedChat:
        """Resolve the route, retrieve if its policy says so, and build the upstream body."""
        route = await self.resolve(request.model)
        messages = [message.model_dump(exclude_none=True) for message in request.messages]
        hits: list[Hit] = []
        snapshot_id = None
        query = last_user_text(messages)
        if route.retrieval == "always" and query:
            # One snapshot for the whole request, even if a refresh swaps `current` meanwhile.
            searcher = self._require_searcher().current()
            snapshot_id = searcher.snapshot_id
            # Embedding is CPU work: keep it off the event loop so other streams keep flowing.
            try:
                hits = await asyncio.to_thread(searcher.search, query, route.k, **route.search)
            except (RetrievalError, OSError, ValueError) as exc:  # a broken snapshot, a missing file, ...
                raise UpstreamUnavailableError(f"retrieval failed: {exc}") from exc
            messages = with_retrieved_context(messages, hits)
        extension = {
            "route": route.name,
            "adapter": route.adapter.served_name if route.adapter else None,
            "retrieval": route.retrieval if query else "never",
            "snapshot": snapshot_id,
        }
        body = request.upstream_body(route.upstream_model, messages)
        return PreparedChat(route, body, citations_for(hits, snapshot_id or ""), extension)

    async def complete(self, prepared: PreparedChat) -> dict[str, Any]:
        """A non-streaming completion."""
        return prepared.decorate(await self.upstream.chat(prepared.body))

    async def stream(self, prepared: PreparedChat) -> AsyncIterator[str]:
        """Server-sent events. The first chunk is awaited before returning, so that an upstream failure
        becomes a proper HTTP error instead of a broken 200 stream."""
        chunks = aiter(self.upstream.stream_chat(prepared.body))
        first = await anext(chunks, None)
        return self._events(prepared, first, chunks)

    async def _events(
        self, prepared: PreparedChat, first: dict[str, Any] | None, chunks: AsyncIterator[dict[str, Any]]
    ) -> AsyncIterator[str]:
        try:
            if first is not None:
                yield _sse(self._decorate_chunk(prepared, first))
                async for chunk in chunks:
                    yield _sse(self._decorate_chunk(prepared, chunk))
        except GatewayError as exc:
            # Headers are gone; OpenAI clients surface an `error` event as an APIError.
            yield _sse(exc.body())
        except Exception as exc:  # noqa: BLE001 - e.g. a malformed upstream line: end the stream cleanly
            yield _sse(error_body(f"internal error while streaming: {type(exc).__name__}", "internal_error"))
        yield "data: [DONE]\n\n"

    @staticmethod
    def _decorate_chunk(prepared: PreparedChat, chunk: dict[str, Any]) -> dict[str, Any]:
        """Rewrite the model name; the chunk that ends a choice also carries citations and the extension."""
        chunk["model"] = prepared.route.name
        if any(choice.get("finish_reason") for choice in chunk.get("choices", [])):
            prepared.decorate(chunk)
        return chunk

    def _require_searcher(self) -> Searcher:
        if self.searcher is None:
            raise UpstreamUnavailableError("no index snapshot is loaded: run `lorag index build`")
        return self.searcher


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"
