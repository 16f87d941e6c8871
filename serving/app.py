"""The FastAPI application: built from already-constructed parts, so tests can hand it fakes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from core.settings import ApiKey, Settings
from serving.adapter_follow import AdapterFollower, CurrentAdapter
from serving.adapters import AdapterLookup, AdapterPool
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
from serving.supervisor import Restartable, VLLMSupervisor
from serving.thresholds import ThresholdBook
from serving.upstream import Upstream


@dataclass(frozen=True)
class Limits:
    """Request limits (from `Settings`; the defaults suit tests)."""

    strict_requests: bool = False
    max_request_bytes: int = 4 * 1024 * 1024
    max_in_flight: int = 64
    max_queue: int = 256

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.strict_requests, settings.max_request_bytes, settings.max_in_flight, settings.max_queue
        )


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
                root=route.upstream_model,
                parent=base_model if route.adapter else None,
                lorag={
                    "adapter": str(route.adapter.ref) if route.adapter else None,
                    "versions": versions(adapter_name) if versions and adapter_name else [],
                    "retrieval": route.retrieval,
                    "k": route.k,
                    "search": route.search.get("mode", "dense"),
                    "auto_threshold": route.auto_threshold,
                    "description": route.description,
                },
            )
        )
    return cards


def build_app(
    routes: dict[str, Route],
    upstream: Upstream,
    searcher: Searcher | None,
    *,
    base_model: str,
    api_keys: Sequence[str | ApiKey] = (),
    admin_keys: Sequence[str] = (),
    limits: Limits = Limits(),
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    adapter_version: AdapterLookup | None = None,
    versions: Callable[[str], list[str]] | None = None,
    thresholds: ThresholdBook | None = None,
    budget: Budget | None = None,
    embeddings: EmbeddingsHandler | None = None,
    managed: Restartable | None = None,
    metrics: Metrics | None = None,
    current_adapter: CurrentAdapter | None = None,
    adapter_poll_s: float = 5.0,
    adapter_keep_s: float | None = None,
) -> FastAPI:
    """The gateway app. `background` tasks (snapshot following, scheduled refresh) run while it serves;
    `on_shutdown` closes what the caller opened (the upstream client). A `managed` vLLM is watched and
    restarted if it dies, with every adapter re-loaded. With `current_adapter` (the registry's aliases), the
    routes follow promotions and rollbacks every `adapter_poll_s` seconds, and vLLM's loaded adapters are
    reconciled with the ones the gateway uses; versions no route serves are unloaded after `adapter_keep_s`
    idle seconds."""
    metrics = metrics or Metrics()
    thresholds = thresholds or ThresholdBook(None, None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(job()) for job in background]
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if on_shutdown is not None:
            await on_shutdown()

    app = FastAPI(title="lorag gateway", version="0.1.0", lifespan=lifespan)
    admission = Admission(limits.max_in_flight, limits.max_queue)
    serving = [route.adapter for route in routes.values() if route.adapter]
    adapters = AdapterPool(upstream, adapter_version, serving, keep_s=adapter_keep_s)
    chat = ChatHandler(
        routes,
        upstream,
        adapters,
        admission,
        searcher,
        thresholds=thresholds,
        budget=budget,
        metrics=metrics,
        strict=limits.strict_requests,
    )
    supervisor = None
    if managed is not None:
        supervisor = VLLMSupervisor(managed, adapters.reload_all, metrics.upstream_restart)
        background = [*background, supervisor.watch]
    if current_adapter is not None:

        def routes_changed(new_routes: dict[str, Route]) -> None:
            app.state.model_cards = model_cards(new_routes, base_model, versions)
            metrics.adapters({n: r.adapter.ref if r.adapter else None for n, r in new_routes.items()})

        follower = AdapterFollower(chat, adapters, current_adapter, routes_changed)
        background = [*background, lambda: follower.run(adapter_poll_s)]
    app.state.chat = chat
    app.state.adapters = adapters
    app.state.embeddings = embeddings
    app.state.model_cards = model_cards(routes, base_model, versions)
    app.state.keyring = Keyring(api_keys, admin_keys)
    app.state.metrics = metrics
    metrics.adapters({name: route.adapter.ref if route.adapter else None for name, route in routes.items()})

    async def readiness() -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {}
        healthy = getattr(upstream, "healthy", None)
        checks["vllm"] = "ok" if healthy is None or await healthy() else "unreachable"
        if supervisor is not None and supervisor.state != "running":
            checks["vllm"] = supervisor.state
        retrieves = any(route.retrieval != "never" for route in routes.values())
        if retrieves:
            checks["snapshot"] = searcher.current().snapshot_id if searcher is not None else None
        ok = checks["vllm"] == "ok" and (not retrieves or checks["snapshot"] is not None)
        return ok, checks

    async def status() -> dict[str, Any]:
        snapshot = searcher.current().snapshot_id if searcher is not None else None
        metrics.snapshot(snapshot)
        metrics.queue(admission.in_flight, admission.waiting)
        calibrated = thresholds.calibrated
        return {
            "snapshot": snapshot,
            "thresholds": calibrated.version if calibrated else None,
            "adapters": adapters.names(),
            "vllm": {
                "state": supervisor.state if supervisor else "external",
                "restarts": supervisor.restarts if supervisor else 0,
                "pid": getattr(getattr(supervisor, "server", None), "pid", None),
            },
            "queue": {"in_flight": admission.in_flight, "waiting": admission.waiting},
        }

    app.state.readiness = readiness
    app.state.status = status
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=limits.max_request_bytes)
    install_request_ids(app)  # outermost: even a 413 carries a request id
    return app
