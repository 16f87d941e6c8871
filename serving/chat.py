"""The chat completions handler: route → policy → (retrieve) → budget → prompt → vLLM → response.

One request holds one admission slot from before retrieval until its last byte; a streaming request whose
client goes away closes its upstream stream, so vLLM stops generating for nobody.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.prompting import last_user_text, with_retrieved_context
from core.types import Citation, Hit, ModelRef
from retrieval.errors import RetrievalError
from serving import streaming
from serving.adapters import AdapterPool
from serving.admission import Admission
from serving.answer_length import answer_limit, limited
from serving.auth import OPEN, Principal
from serving.budget import TokenCounter, fit_context
from serving.errors import (
    BadRequestError,
    GatewayError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
    UpstreamUnavailableError,
)
from serving.live_index import SnapshotSearcher
from serving.policy import Decision, after_search, before_search
from serving.protocol import ChatCompletionRequest, RequestExtension, openai_shaped
from serving.routing import Route, pin_route, select_route
from serving.thresholds import ThresholdBook
from serving.upstream import Generation

log = logging.getLogger("lorag.chat")


class Searcher(Protocol):
    """The index as the handler sees it: the snapshot to use for one request (it may change between)."""

    def current(self) -> SnapshotSearcher: ...


class ChatMetrics(Protocol):
    """What the handler reports (serving/observability.py implements it for Prometheus)."""

    def request(self, route: str, mode: str, status: int, seconds: float) -> None: ...

    def retrieval(self, route: str, seconds: float) -> None: ...

    def first_token(self, route: str, seconds: float) -> None: ...

    def tokens(self, route: str, prompt: int, completion: int) -> None: ...

    def rejected(self, reason: str) -> None: ...


class NoMetrics:
    """Reports nothing (unit tests, embedded use)."""

    def request(self, route: str, mode: str, status: int, seconds: float) -> None: ...

    def retrieval(self, route: str, seconds: float) -> None: ...

    def first_token(self, route: str, seconds: float) -> None: ...

    def tokens(self, route: str, prompt: int, completion: int) -> None: ...

    def rejected(self, reason: str) -> None: ...


@dataclass(frozen=True)
class Budget:
    """The context budget: how to count tokens and how many the model holds."""

    counter: TokenCounter
    context_len: int
    """vLLM's `max_model_len`: prompt, sources and the answer's limit (`serving/answer_length.py`)."""


@dataclass
class PreparedChat:
    """A request turned into an upstream body plus what the response must report."""

    route: Route
    body: dict[str, Any]
    citations: list[dict[str, Any]] = field(default_factory=list)
    extension: dict[str, Any] = field(default_factory=dict)
    mode: str = "none"
    client_wants_usage: bool = True
    started: float = field(default_factory=time.perf_counter)

    def decorate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Report the route name (not vLLM's internal model name) and lorag's extension fields."""
        payload["model"] = self.route.model_name
        payload["citations"] = self.citations
        payload["lorag"] = self.extension
        return payload


def citations_for(hits: Sequence[Hit], snapshot_id: str, include_text: bool = False) -> list[dict[str, Any]]:
    """The `citations` extension: one entry per numbered source in the prompt (with its text if asked)."""
    citations = []
    for index, hit in enumerate(hits, start=1):
        citation = Citation(
            index,
            hit.chunk.source_id,
            hit.chunk.chunk_id,
            round(hit.score, 4),
            snapshot_id,
            str(hit.chunk.metadata.get("content_hash", "")),
        ).to_dict()
        if include_text:
            citation["text"] = hit.chunk.text
        citations.append(citation)
    return citations


class ChatHandler:
    """Serves `POST /v1/chat/completions` for every route."""

    def __init__(
        self,
        routes: dict[str, Route],
        upstream: Generation,
        adapters: AdapterPool,
        admission: Admission,
        searcher: Searcher | None = None,
        *,
        thresholds: ThresholdBook | None = None,
        budget: Budget | None = None,
        metrics: ChatMetrics | None = None,
        strict: bool = False,
    ) -> None:
        """`adapters` loads the versions requests pin (`model="route@vN"`) and re-loads lost ones."""
        self.routes = routes
        """Route name → route; replaced in one assignment when an adapter alias moves (`AdapterFollower`)."""
        self.upstream = upstream
        self.adapters = adapters
        self.admission = admission
        self.searcher = searcher
        self.thresholds = thresholds or ThresholdBook(None, None)
        self.budget = budget
        self.metrics: ChatMetrics = metrics or NoMetrics()
        self.strict = strict
        self._unknown_seen: set[str] = set()

    async def handle(
        self, request: ChatCompletionRequest, principal: Principal = OPEN
    ) -> dict[str, Any] | AsyncIterator[str]:
        """A completion (JSON payload) or, for `stream: true`, its server-sent events."""
        started = time.perf_counter()
        model = ModelRef.parse(request.model)
        # A label for the metrics even if the request fails: never the raw string (unbounded cardinality).
        route_name = str(model) if model.name in self.routes else "unknown"
        mode = "none"
        entered: float | None = None
        try:
            self._check_fields(request)
            entered = await self.admission.enter()
            prepared = await self.prepare(request, model, principal)
            route_name, mode = prepared.route.model_name, prepared.mode
            if request.stream:
                events = await self._stream(prepared, entered)
                entered = None  # the stream now owns the slot
                return events
            payload = openai_shaped(await self._complete(prepared))
            usage = payload.get("usage") or {}
            self.metrics.tokens(route_name, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
            self.metrics.request(route_name, mode, 200, time.perf_counter() - started)
            return prepared.decorate(payload)
        except GatewayError as exc:
            if isinstance(exc, RateLimitError):
                self.metrics.rejected("queue_full")
            self.metrics.request(route_name, mode, exc.status_code, time.perf_counter() - started)
            raise
        finally:
            if entered is not None:
                self.admission.leave(entered)

    async def prepare(
        self, request: ChatCompletionRequest, model: ModelRef, principal: Principal = OPEN
    ) -> PreparedChat:
        """Resolve the route, apply its retrieval policy, answer length and context budget, and build the
        upstream body."""
        principal.check_route(model)
        route = await self.resolve(model)
        messages = [message.model_dump(exclude_none=True) for message in request.messages]
        body = request.upstream_body(route.upstream_model, messages)
        limit = answer_limit(body, route.answer)
        extension_in = request.lorag or RequestExtension()
        hits, snapshot_id, decision = await self._sources(route, messages, extension_in)
        trimmed = 0
        if hits and self.budget is not None:
            hits, messages, trimmed = await self._fit(route, messages, hits, limit.tokens, body.get("tools"))
        else:
            messages = with_retrieved_context(messages, hits, route.context_header)
        body = limited({**body, "messages": messages}, limit)
        if request.stream:
            # Always ask vLLM for usage so that token metrics are exact; dropped again if not asked for.
            body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
        extension = {
            "route": route.model_name,
            "adapter": str(route.adapter.ref) if route.adapter else None,
            "adapter_version": route.adapter.ref.version if route.adapter else None,
            "snapshot": snapshot_id,
            **decision.report(),
            "sources": len(hits),
            "trimmed": trimmed,
            **limit.report(),
        }
        citations = citations_for(hits, snapshot_id or "", extension_in.include_text)
        prepared = PreparedChat(route, body, citations, extension, "rag" if hits else "none")
        prepared.client_wants_usage = bool(request.stream_options and request.stream_options.include_usage)
        return prepared

    async def _sources(
        self, route: Route, messages: list[dict[str, Any]], extension: RequestExtension
    ) -> tuple[list[Hit], str | None, Decision]:
        """The retrieval policy's decision and, if it retrieves, the hits and their snapshot."""
        policy = extension.retrieval or route.retrieval
        query = last_user_text(messages)
        decision = before_search(policy, bool(query))
        if not decision.retrieve:
            return [], None, decision
        return await self._retrieve(route, query, extension.k or route.k, decision)

    async def resolve(self, model: ModelRef) -> Route:
        """The route a request names; `route@vN` pins its adapter to version vN (loaded on first use)."""
        route = select_route(self.routes, model.name)
        if model.version is not None:
            if route.adapter is None or not self.adapters.pinnable:
                raise NotFoundError(
                    f"route {model.name!r} has no adapter to pin to {model.version!r}",
                    param="model",
                    code="model_not_found",
                )
            route = pin_route(route, await self.adapters.version(route.adapter.ref.name, model.version))
        if route.adapter is not None:
            self.adapters.used(route.adapter)
        return route

    def _check_fields(self, request: ChatCompletionRequest) -> None:
        unknown = request.unknown_fields()
        if unknown and self.strict:
            raise BadRequestError(
                f"unknown field {unknown[0]!r} (the gateway runs with strict_requests)", param=unknown[0]
            )
        if unknown:
            # INFO the first time a field is seen, DEBUG after: a client sending `ignore_eos` on every
            # request would otherwise write a line per request.
            new = [name for name in unknown if name not in self._unknown_seen]
            self._unknown_seen.update(new)
            log.log(
                logging.INFO if new else logging.DEBUG,
                "passing unknown request fields on to vLLM: %s",
                ", ".join(unknown),
            )

    async def _retrieve(
        self, route: Route, query: str, k: int, decision: Decision
    ) -> tuple[list[Hit], str, Decision]:
        # One snapshot for the whole request, even if a refresh swaps `current` meanwhile.
        searcher = self._require_searcher().current()
        started = time.perf_counter()
        # Embedding is CPU work: keep it off the event loop so other streams keep flowing.
        try:
            hits = await asyncio.to_thread(searcher.search, query, k, **route.search)
        except (RetrievalError, OSError, ValueError) as exc:  # a broken snapshot, a missing file, ...
            raise UpstreamUnavailableError(f"retrieval failed: {exc}") from exc
        self.metrics.retrieval(route.model_name, time.perf_counter() - started)
        threshold = self.thresholds.threshold(route.name, route.auto_threshold)
        decision = after_search(decision, hits, threshold)
        return (hits if decision.use else []), searcher.snapshot_id, decision

    def _require_searcher(self) -> Searcher:
        if self.searcher is None:
            raise UpstreamUnavailableError("no index snapshot is loaded: run `lorag index build`")
        return self.searcher

    async def _fit(
        self,
        route: Route,
        messages: list[dict[str, Any]],
        hits: list[Hit],
        answer: int,
        tools: list[dict[str, Any]] | None,
    ) -> tuple[list[Hit], list[dict[str, Any]], int]:
        """The best-ranked hits that fit the context with `answer` tokens left, in the messages."""
        assert self.budget is not None
        try:
            fitted = await asyncio.to_thread(
                fit_context,
                messages,
                hits,
                self.budget.counter,
                self.budget.context_len,
                answer,
                tools,
                route.context_header,
            )
        except GatewayError:
            raise
        except Exception as exc:  # noqa: BLE001 - a template that cannot render these messages: send as is
            log.warning("cannot count prompt tokens (%s); sources not trimmed", exc)
            return hits, with_retrieved_context(messages, hits, route.context_header), 0
        return fitted.hits, fitted.messages, fitted.trimmed

    async def _complete(self, prepared: PreparedChat) -> dict[str, Any]:
        """vLLM's non-streaming completion, re-loading a lost adapter once."""
        try:
            return await self.upstream.chat(prepared.body)
        except UpstreamError as exc:
            if not await self._reload_if_lost(prepared, exc):
                raise
        return await self.upstream.chat(prepared.body)

    async def _stream(self, prepared: PreparedChat, entered: float) -> AsyncIterator[str]:
        """Server-sent events. The first chunk is awaited before returning, so that an upstream failure
        becomes a proper HTTP error instead of a broken 200 stream."""
        try:
            first, chunks = await self._first_chunk(prepared)
        except UpstreamError as exc:
            if not await self._reload_if_lost(prepared, exc):
                raise
            first, chunks = await self._first_chunk(prepared)
        self.metrics.first_token(prepared.route.model_name, time.perf_counter() - prepared.started)

        def on_end(status: int) -> None:
            self.admission.leave(entered)
            self.metrics.request(
                prepared.route.model_name, prepared.mode, status, time.perf_counter() - prepared.started
            )

        return streaming.relay(prepared, first, chunks, self.metrics, on_end)

    async def _first_chunk(self, prepared: PreparedChat) -> tuple[dict[str, Any] | None, streaming.Chunks]:
        """Open vLLM's stream and read its first chunk (the stream is closed if that fails)."""
        chunks = aiter(self.upstream.stream_chat(prepared.body))
        try:
            return await anext(chunks, None), chunks
        except BaseException:
            await streaming.close(chunks)
            raise

    async def _reload_if_lost(self, prepared: PreparedChat, exc: UpstreamError) -> bool:
        """After vLLM answered 404 for this request's adapter (unloaded by another gateway sharing the
        server, or lost in a restart), load it again; True if the request should be sent once more."""
        adapter = prepared.route.adapter
        if exc.status_code != 404 or adapter is None:
            return False
        return await self.adapters.reload_lost(adapter)
