"""Hot adapter swaps and reconciliation: a gateway follows the registry's aliases without a restart.

When `lorag adapters promote` (or `rollback`) moves an alias, the gateway loads the new version into vLLM
under its own versioned name (`demo@v3`; a changed adapter is never loaded under an old name), and only then
switches its routes to it, in one assignment: a request is served entirely by the old or by the new version.
Versions it loaded before stay loaded, so requests pinned to them (`demo@v2`) keep working.

Reconciliation makes vLLM match: every adapter the gateway has used must be listed by vLLM's `/v1/models`;
missing ones (vLLM restarted behind our back, another replica, a failed load) are loaded again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from serving.routing import AdapterRef, Route

log = logging.getLogger("lorag.adapters")

CurrentAdapter = Callable[[str], AdapterRef | None]
"""Adapter name → its current (aliased) registered version, or None."""


class AdapterHost(Protocol):
    """What the follower changes: the chat handler's routes and the adapters it has loaded."""

    routes: dict[str, Route]
    loaded: dict[str, str]

    async def load_version(self, adapter_name: str, version: str) -> AdapterRef: ...


class ServedModels(Protocol):
    async def models(self) -> list[dict[str, Any]]: ...

    async def load_adapter(self, served_name: str, path: str) -> None: ...


def adapter_name(route: Route) -> str | None:
    return route.adapter.served_name.partition("@")[0] if route.adapter else None


def retarget(routes: Mapping[str, Route], name: str, adapter: AdapterRef) -> dict[str, Route]:
    """A copy of `routes` whose routes on adapter `name` are served by `adapter` (pure)."""
    return {
        key: replace(route, upstream_model=adapter.served_name, adapter=adapter)
        if adapter_name(route) == name
        else route
        for key, route in routes.items()
    }


class AdapterFollower:
    """Follows the registry aliases of the adapters the routes use, and keeps vLLM's loaded set whole."""

    def __init__(
        self,
        host: AdapterHost,
        upstream: ServedModels,
        current: CurrentAdapter,
        on_change: Callable[[dict[str, Route]], None] = lambda routes: None,
    ) -> None:
        self.host = host
        self.upstream = upstream
        self.current = current
        self.on_change = on_change

    async def follow_aliases(self) -> list[str]:
        """Switch routes to their adapters' current versions (loading each first); returns what changed."""
        changed = []
        names = {adapter_name(route) for route in self.host.routes.values()} - {None}
        for name in sorted(n for n in names if n):
            target = self.current(name)
            serving = {
                r.adapter.served_name
                for r in self.host.routes.values()
                if adapter_name(r) == name and r.adapter
            }
            if target is None or serving == {target.served_name}:
                continue
            version = target.served_name.partition("@")[2]
            loaded = await self.host.load_version(name, version)  # before the switch: never a 404 window
            self.host.routes = retarget(self.host.routes, name, loaded)
            log.info("adapter alias %s now serves %s (was %s)", name, loaded.served_name, ", ".join(serving))
            changed.append(loaded.served_name)
        if changed:
            self.on_change(self.host.routes)
        return changed

    async def reconcile(self) -> list[str]:
        """Load every adapter the gateway uses that vLLM does not list; returns the ones re-loaded."""
        served = {card.get("id") for card in await self.upstream.models()}
        missing = [name for name in self.host.loaded if name not in served]
        for served_name in missing:
            log.warning("vLLM does not serve %s: loading it again", served_name)
            await self.upstream.load_adapter(served_name, self.host.loaded[served_name])
        return missing

    async def run(self, poll_s: float) -> None:
        """The gateway's background task: follow and reconcile every `poll_s` seconds, never crashing."""
        while True:
            await asyncio.sleep(poll_s)
            try:
                await self.follow_aliases()
                await self.reconcile()
            except Exception as exc:  # noqa: BLE001 - a failed load is retried at the next poll
                log.warning("adapter reconciliation failed (retrying in %.0f s): %s", poll_s, exc)
