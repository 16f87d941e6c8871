"""Hot adapter swaps and reconciliation: a gateway follows the registry's aliases without a restart.

When `lorag adapters promote` (or `rollback`) moves an alias, the gateway loads the new version into vLLM
under its own versioned name (`demo@v3`; a changed adapter is never loaded under an old name), and only then
switches its routes to it, in one assignment: a request is served entirely by the old or by the new version.

Reconciliation makes vLLM match: every adapter the gateway uses must be listed by vLLM's `/v1/models`;
missing ones (vLLM restarted behind our back, another replica, a failed load) are loaded again. A version
no route serves any more is unloaded once it has had no request for `keep_s` seconds (requests already
in vLLM finish either way: vLLM's unload only forgets the name), so a quarterly retrain does not leave
vLLM holding every version ever promoted. A request pinned to it later (`demo@v2`) loads it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from serving.routing import Route, ServedAdapter, retarget

log = logging.getLogger("lorag.adapters")

CurrentAdapter = Callable[[str], ServedAdapter | None]
"""Adapter name → its current (aliased) registered version, or None."""


class AdapterHost(Protocol):
    """What the follower changes: the chat handler's routes and the adapters it has loaded."""

    routes: dict[str, Route]
    loaded: dict[str, str]
    last_used: dict[str, float]
    """Versioned name → `time.monotonic()` of its last request."""

    async def load_version(self, adapter_name: str, version: str) -> ServedAdapter: ...


class ServedModels(Protocol):
    async def models(self) -> list[dict[str, Any]]: ...

    async def load_adapter(self, served_name: str, path: str) -> None: ...

    async def unload_adapter(self, served_name: str) -> None: ...


def adapter_name(route: Route) -> str | None:
    return route.adapter.ref.name if route.adapter else None


class AdapterFollower:
    """Follows the registry aliases of the adapters the routes use, and keeps vLLM's loaded set whole."""

    def __init__(
        self,
        host: AdapterHost,
        upstream: ServedModels,
        current: CurrentAdapter,
        on_change: Callable[[dict[str, Route]], None] = lambda routes: None,
        keep_s: float | None = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`keep_s`: how long a version no route serves stays loaded after its last request (None: for
        ever)."""
        self.host = host
        self.upstream = upstream
        self.current = current
        self.on_change = on_change
        self.keep_s = keep_s
        self.clock = clock
        self._retired_at: dict[str, float] = {}

    async def follow_aliases(self) -> list[str]:
        """Switch routes to their adapters' current versions (loading each first); returns what changed."""
        changed = []
        names = {adapter_name(route) for route in self.host.routes.values()} - {None}
        for name in sorted(n for n in names if n):
            target = self.current(name)
            serving = {
                r.adapter.ref for r in self.host.routes.values() if r.adapter and r.adapter.ref.name == name
            }
            if target is None or target.ref.version is None or serving == {target.ref}:
                continue
            loaded = await self.host.load_version(name, target.ref.version)  # first: never a 404 window
            self.host.routes = retarget(self.host.routes, name, loaded)
            was = ", ".join(sorted(map(str, serving)))
            log.info("adapter alias %s now serves %s (was %s)", name, loaded.ref, was)
            changed.append(str(loaded.ref))
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

    async def retire(self) -> list[str]:
        """Unload the versions no route serves that have been idle for `keep_s`; returns them."""
        if self.keep_s is None:
            return []
        now = self.clock()
        serving = {route.adapter.upstream_name for route in self.host.routes.values() if route.adapter}
        for name in serving:
            self._retired_at.pop(name, None)
        idle = []
        for name in [n for n in self.host.loaded if n not in serving]:
            since = max(self._retired_at.setdefault(name, now), self.host.last_used.get(name, 0.0))
            if now - since >= self.keep_s:
                idle.append(name)
        for name in idle:
            await self.upstream.unload_adapter(name)
            self.host.loaded.pop(name, None)
            self._retired_at.pop(name, None)
            log.info("unloaded adapter %s from vLLM: no route serves it, idle %.0f s", name, self.keep_s)
        return idle

    async def run(self, poll_s: float) -> None:
        """The gateway's background task: follow, reconcile and retire every `poll_s` seconds, never
        crashing."""
        while True:
            await asyncio.sleep(poll_s)
            try:
                await self.follow_aliases()
                await self.reconcile()
                await self.retire()
            except Exception as exc:  # noqa: BLE001 - a failed load is retried at the next poll
                log.warning("adapter reconciliation failed (retrying in %.0f s): %s", poll_s, exc)
