"""Hot adapter swaps: a gateway follows the registry's aliases without a restart.

When `lorag adapters promote` (or `rollback`) moves an alias, the gateway loads the new version into vLLM
under its own versioned name (`demo@v3`; a changed adapter is never loaded under an old name), and only then
switches its routes to it, in one assignment: a request is served entirely by the old or by the new version.

Every poll also makes vLLM match the gateway (`AdapterPool.reconcile`: missing versions are loaded again)
and unloads versions no route serves once they have idled (`AdapterPool.retire`), so a quarterly retrain
does not leave vLLM holding every version ever promoted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from serving.adapters import AdapterPool
from serving.routing import Route, ServedAdapter, retarget

log = logging.getLogger("lorag.adapters")

CurrentAdapter = Callable[[str], ServedAdapter | None]
"""Adapter name → its current (aliased) registered version, or None."""


class RouteHost(Protocol):
    """What the follower changes: the chat handler's routes."""

    routes: dict[str, Route]


def serving_names(routes: dict[str, Route]) -> set[str]:
    """The upstream names of the adapter versions `routes` serve."""
    return {route.adapter.upstream_name for route in routes.values() if route.adapter}


class AdapterFollower:
    """Follows the registry aliases of the adapters the routes use, and keeps vLLM's loaded set whole."""

    def __init__(
        self,
        host: RouteHost,
        pool: AdapterPool,
        current: CurrentAdapter,
        on_change: Callable[[dict[str, Route]], None] = lambda routes: None,
    ) -> None:
        self.host = host
        self.pool = pool
        self.current = current
        self.on_change = on_change

    async def follow_aliases(self) -> list[str]:
        """Switch routes to their adapters' current versions (loading each first); returns what changed."""
        changed = []
        names = sorted({route.adapter.ref.name for route in self.host.routes.values() if route.adapter})
        for name in names:
            target = self.current(name)
            serving = {
                r.adapter.ref for r in self.host.routes.values() if r.adapter and r.adapter.ref.name == name
            }
            if target is None or target.ref.version is None or serving == {target.ref}:
                continue
            loaded = await self.pool.version(name, target.ref.version)  # first: never a 404 window
            self.host.routes = retarget(self.host.routes, name, loaded)
            was = ", ".join(sorted(map(str, serving)))
            log.info("adapter alias %s now serves %s (was %s)", name, loaded.ref, was)
            changed.append(str(loaded.ref))
        if changed:
            self.on_change(self.host.routes)
        return changed

    async def poll(self) -> None:
        """One round: follow the aliases, load what vLLM lost, unload idle versions no route serves."""
        await self.follow_aliases()
        await self.pool.reconcile()
        await self.pool.retire(serving_names(self.host.routes))

    async def run(self, poll_s: float) -> None:
        """The gateway's background task: `poll` every `poll_s` seconds, never crashing."""
        while True:
            await asyncio.sleep(poll_s)
            try:
                await self.poll()
            except Exception as exc:  # noqa: BLE001 - a failed load is retried at the next poll
                log.warning("adapter reconciliation failed (retrying in %.0f s): %s", poll_s, exc)
