"""The FastAPI application: built from already-constructed parts, so tests can hand it fakes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from fastapi import FastAPI

from core.settings import ApiKey, Settings
from serving.adapter_follow import AdapterFollower
from serving.adapters import AdapterPool, AdapterSource
from serving.admission import Admission
from serving.auth import Keyring
from serving.chat import Budget, ChatHandler, Searcher
from serving.embeddings import EmbeddingsHandler
from serving.errors import install_error_handlers
from serving.limits import BodyLimit
from serving.observability import Metrics, install_request_ids
from serving.protocol import ModelCard
from serving.routes import router
from serving.routing import Route
from serving.status import GatewayStatus
from serving.supervisor import Restartable, VLLMSupervisor
from serving.thresholds import ThresholdBook
from serving.upstream import Upstream

_SETTINGS = Settings.model_fields


@dataclass(frozen=True)
class GatewayOptions:
    """The gateway's own settings; the defaults are `Settings`' (the one place they are set)."""

    api_keys: Sequence[str | ApiKey] = ()
    admin_keys: Sequence[str] = ()
    strict_requests: bool = _SETTINGS["strict_requests"].default
    max_request_bytes: int = _SETTINGS["max_request_bytes"].default
    max_in_flight: int = _SETTINGS["max_in_flight"].default
    max_queue: int = _SETTINGS["max_queue"].default
    adapter_poll_s: float = _SETTINGS["adapter_poll_s"].default
    adapter_keep_s: float | None = _SETTINGS["adapter_keep_s"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayOptions:
        """The options `settings` sets."""
        return cls(**{field.name: getattr(settings, field.name) for field in fields(cls)})


@dataclass(frozen=True)
class GatewayParts:
    """What a gateway app is built from, already constructed (tests hand it fakes)."""

    routes: dict[str, Route]
    upstream: Upstream
    base_model: str
    """The name vLLM serves the base model under (the `parent` of adapter routes in `/v1/models`)."""
    searcher: Searcher | None = None
    """The index; None when no route retrieves."""
    registry: AdapterSource | None = None
    """Registered adapter versions: pinning (`demo@v2`), `/v1/models` versions, and — polled every
    `adapter_poll_s` — following promotions and rollbacks. None: the routes' versions only."""
    thresholds: ThresholdBook | None = None
    budget: Budget | None = None
    embeddings: EmbeddingsHandler | None = None
    managed: Restartable | None = None
    """A vLLM the gateway started: watched, restarted if it dies, every adapter re-loaded."""
    metrics: Metrics | None = None
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    """Tasks that run while the gateway serves (snapshot following, scheduled refresh)."""
    on_shutdown: Callable[[], Awaitable[None]] | None = None
    """Closes what the caller opened (the upstream client)."""
    options: GatewayOptions = field(default_factory=GatewayOptions)


def model_cards(
    routes: dict[str, Route], base_model: str, versions: Callable[[str], list[str]] | None = None
) -> list[ModelCard]:
    """`/v1/models` entries: one per route; routes served by an adapter list the base model as parent and
    the versions a request may pin (`demo@v1`)."""
    created = int(time.time())
    cards = []
    for route in routes.values():
        adapter_name = route.adapter.ref.name if route.adapter else None
        cards.append(
            ModelCard(
                id=route.name,
                created=created,
                root=str(route.adapter.ref) if route.adapter else route.upstream_model,
                parent=base_model if route.adapter else None,
                lorag={
                    "adapter": str(route.adapter.ref) if route.adapter else None,
                    "versions": versions(adapter_name) if versions and adapter_name else [],
                    "retrieval": route.retrieval,
                    "k": route.k,
                    "search": route.search.get("mode", "dense"),
                    "auto_threshold": route.auto_threshold,
                    "default_max_tokens": route.answer.default,
                    "max_tokens_cap": route.answer.cap,
                    "description": route.description,
                },
            )
        )
    return cards


def build_app(parts: GatewayParts) -> FastAPI:
    """The gateway app: the routes of `serving/routes.py` over a chat handler built from `parts`."""
    options, metrics = parts.options, parts.metrics or Metrics()
    admission = Admission(options.max_in_flight, options.max_queue)
    serving = [route.adapter for route in parts.routes.values() if route.adapter]
    lookup = parts.registry.version if parts.registry else None
    adapters = AdapterPool(parts.upstream, lookup, serving, keep_s=options.adapter_keep_s)
    chat = ChatHandler(
        parts.routes,
        parts.upstream,
        adapters,
        admission,
        parts.searcher,
        thresholds=parts.thresholds,
        budget=parts.budget,
        metrics=metrics,
        strict=options.strict_requests,
    )
    supervisor = None
    if parts.managed is not None:
        supervisor = VLLMSupervisor(parts.managed, adapters.reload_all, metrics.upstream_restart)
    app = FastAPI(title="lorag gateway", version="0.1.0", lifespan=lifespan)
    app.state.chat, app.state.adapters, app.state.embeddings = chat, adapters, parts.embeddings
    app.state.keyring = Keyring(options.api_keys, options.admin_keys)
    app.state.metrics, app.state.on_shutdown = metrics, parts.on_shutdown
    probes = GatewayStatus(chat, adapters, admission, metrics, supervisor)
    app.state.readiness, app.state.status = probes.readiness, probes.status

    def routes_changed(routes: dict[str, Route]) -> None:
        versions = parts.registry.versions if parts.registry else None
        app.state.model_cards = model_cards(routes, parts.base_model, versions)
        metrics.adapters(
            {name: route.adapter.ref if route.adapter else None for name, route in routes.items()}
        )

    routes_changed(parts.routes)
    app.state.background = [*parts.background, *watchers(parts, chat, adapters, supervisor, routes_changed)]
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=options.max_request_bytes)
    install_request_ids(app)  # outermost: even a 413 carries a request id
    return app


def watchers(
    parts: GatewayParts,
    chat: ChatHandler,
    adapters: AdapterPool,
    supervisor: VLLMSupervisor | None,
    routes_changed: Callable[[dict[str, Route]], None],
) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    """The gateway's own background tasks: the vLLM supervisor, and the registry follower that moves the
    routes with promotions and rollbacks and keeps vLLM's adapters whole."""
    jobs: list[Callable[[], Coroutine[Any, Any, None]]] = []
    if supervisor is not None:
        jobs.append(supervisor.watch)
    if parts.registry is not None:
        follower = AdapterFollower(chat, adapters, parts.registry.current, routes_changed)
        poll_s = parts.options.adapter_poll_s
        jobs.append(lambda: follower.run(poll_s))
    return jobs


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run `app.state.background` while the app serves; then stop it and run `app.state.on_shutdown`."""
    tasks = [asyncio.create_task(job()) for job in app.state.background]
    # Everything loaded at start-up (the embedder, torch, tokenizers, the index) out of the collector's
    # sight: a full collection over that heap took 282 ms here, stalling every stream the gateway relays.
    gc.collect()
    gc.freeze()
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if app.state.on_shutdown is not None:
        await app.state.on_shutdown()
