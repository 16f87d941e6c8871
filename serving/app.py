"""The FastAPI application: built from already-constructed parts, so tests can hand it fakes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from serving.chat import AdapterLookup, ChatHandler, Searcher
from serving.errors import install_error_handlers
from serving.protocol import ModelCard
from serving.routes import router
from serving.routing import Route
from serving.upstream import Upstream


def model_cards(routes: dict[str, Route], base_model: str) -> list[ModelCard]:
    """`/v1/models` entries: one per route; routes served by an adapter list the base model as parent."""
    created = int(time.time())
    return [
        ModelCard(
            id=route.name,
            created=created,
            root=route.upstream_model,
            parent=base_model if route.adapter else None,
            lorag={
                "adapter": route.adapter.served_name if route.adapter else None,
                "retrieval": route.retrieval,
                "k": route.k,
                "description": route.description,
            },
        )
        for route in routes.values()
    ]


def build_app(
    routes: dict[str, Route],
    upstream: Upstream,
    searcher: Searcher | None,
    *,
    base_model: str,
    api_keys: list[str] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    adapter_version: AdapterLookup | None = None,
) -> FastAPI:
    """The gateway app. `background` tasks (snapshot following, scheduled refresh) run while it serves;
    `on_shutdown` closes what the caller opened (the upstream client)."""

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
    app.state.chat = ChatHandler(routes, upstream, searcher, adapter_version)
    app.state.model_cards = model_cards(routes, base_model)
    app.state.api_keys = list(api_keys or [])
    install_error_handlers(app)
    app.include_router(router)
    return app
