"""The adapter versions a gateway has loaded into vLLM, and their lifecycle.

A version is loaded once, on first use, under its own name (a changed adapter never reuses a name). It is
loaded again whenever vLLM lost it: a 404 for a request (another gateway sharing the server unloaded it), a
restart of the managed server, or a reconciliation that finds it missing from vLLM's `/v1/models`. With
`keep_s` set, a version no route serves any more is unloaded once it has had no request for `keep_s`
seconds (requests already in vLLM finish either way: vLLM's unload only forgets the name); a request pinned
to it later loads it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.settings import RouteConfig
from core.types import ModelRef
from serving.errors import NotFoundError
from serving.routing import RouteConfigError, ServedAdapter
from serving.upstream import AdapterControl

if TYPE_CHECKING:
    from training.registry import AdapterVersion

log = logging.getLogger("lorag.adapters")

AdapterLookup = Callable[[str, str], ServedAdapter | None]
"""(adapter name, version) → the registered version, or None."""


class AdapterSource(Protocol):
    """The adapter registry as the gateway reads it; every call reads it afresh (promotions, rollbacks and
    new versions come from other processes)."""

    def version(self, name: str, version: str) -> ServedAdapter | None:
        """A registered version (for `model="demo@v2"`), or None."""
        ...

    def versions(self, name: str) -> list[str]:
        """The registered versions of `name`, oldest first (for `/v1/models`)."""
        ...

    def current(self, name: str) -> ServedAdapter | None:
        """The version `name`'s `current` alias points at, or None."""
        ...


class RegisteredAdapters:
    """The on-disk registry (`training.registry`) as an `AdapterSource`."""

    def __init__(self, root: Path) -> None:
        from training.registry import AdapterRegistry

        self.registry = AdapterRegistry(root)

    def version(self, name: str, version: str) -> ServedAdapter | None:
        from training.registry import AdapterNotFoundError

        try:
            return served(self.registry.get(name, version))
        except AdapterNotFoundError:
            return None

    def versions(self, name: str) -> list[str]:
        return self.registry.versions(name)

    def current(self, name: str) -> ServedAdapter | None:
        found = self.registry.current(name)
        return served(found) if found else None

    def for_routes(self, configs: Mapping[str, RouteConfig], base_model: str) -> dict[str, ServedAdapter]:
        """The current version of every adapter a route names (unregistered ones are left out, for
        `build_routes` to report); an adapter trained on another base model is refused."""
        found: dict[str, ServedAdapter] = {}
        for name in {config.adapter for config in configs.values() if config.adapter}:
            current = self.registry.current(name)
            if current is None:
                continue
            trained_on = current.manifest.get("base_model")
            if trained_on and trained_on != base_model:
                raise RouteConfigError(
                    f"adapter {current.served_name} was trained on {trained_on!r}, but chat_model is "
                    f"{base_model!r}: serve it with that base model or retrain the adapter"
                )
            found[name] = served(current)
        return found


DIGEST_CHARS = 8
"""Hex digits of the adapter's content hash in the name vLLM serves it under."""


def served(version: AdapterVersion) -> ServedAdapter:
    """A registered version as the gateway serves it, named in vLLM by its content hash too."""
    sha256 = version.manifest.get("adapter_sha256")
    digest = str(sha256)[:DIGEST_CHARS] if sha256 else None
    return ServedAdapter(ModelRef(version.name, version.version), str(Path(version.path).resolve()), digest)


class AdapterPool:
    """What this gateway has loaded into vLLM (every replica, behind a `ReplicaSet`)."""

    def __init__(
        self,
        upstream: AdapterControl,
        lookup: AdapterLookup | None,
        serving: Iterable[ServedAdapter] = (),
        keep_s: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`lookup` finds registered versions (None: only the `serving` ones, no pinning); `serving` are
        the versions the routes use, loaded before the gateway starts; `keep_s`: how long a version no
        route serves stays loaded after its last request (None: for ever)."""
        self.upstream = upstream
        self.lookup = lookup
        self.keep_s = keep_s
        self.clock = clock or time.monotonic
        self.loaded: dict[str, ServedAdapter] = {adapter.upstream_name: adapter for adapter in serving}
        """Upstream name → version, for every adapter vLLM serves for us (to load again when lost)."""
        self.last_used: dict[str, float] = {}
        """Upstream name → `clock()` of its last request."""
        self._retired_at: dict[str, float] = {}
        self._loading = asyncio.Lock()

    @property
    def pinnable(self) -> bool:
        """Whether requests may pin registered versions (`model="demo@v2"`)."""
        return self.lookup is not None

    def names(self) -> list[str]:
        """The upstream names of the loaded versions, sorted."""
        return sorted(self.loaded)

    def used(self, adapter: ServedAdapter) -> None:
        """A request is being served by `adapter` (it restarts its idle time)."""
        self.last_used[adapter.upstream_name] = self.clock()

    async def version(self, name: str, version: str) -> ServedAdapter:
        """A registered version, loaded into vLLM if it is not yet (once, however many ask at once)."""
        adapter = self.lookup(name, version) if self.lookup else None
        if adapter is None:
            raise NotFoundError(
                f"adapter {name!r} has no version {version!r}", param="model", code="model_not_found"
            )
        async with self._loading:
            if adapter.upstream_name not in self.loaded:
                await self.upstream.load_adapter(adapter.upstream_name, adapter.path)
                self.loaded[adapter.upstream_name] = adapter
        return adapter

    async def reload_lost(self, adapter: ServedAdapter) -> bool:
        """vLLM answered 404 for `adapter`: load it again; True if the request should be sent once more."""
        if self.lookup is None or adapter.ref.version is None:
            return False
        log.warning("vLLM does not know adapter %s: loading it again", adapter.upstream_name)
        async with self._loading:
            self.loaded.pop(adapter.upstream_name, None)
        await self.version(adapter.ref.name, adapter.ref.version)
        return True

    async def reload_all(self) -> None:
        """Load every adapter this gateway has used into a (restarted) vLLM."""
        async with self._loading:
            for upstream_name, adapter in self.loaded.items():
                log.info("re-loading adapter %s", upstream_name)
                await self.upstream.load_adapter(upstream_name, adapter.path)

    async def reconcile(self) -> list[str]:
        """Load every adapter we use that vLLM does not list; returns the ones loaded again."""
        listed = {card.get("id") for card in await self.upstream.models()}
        missing = [name for name in self.loaded if name not in listed]
        for upstream_name in missing:
            log.warning("vLLM does not serve %s: loading it again", upstream_name)
            await self.upstream.load_adapter(upstream_name, self.loaded[upstream_name].path)
        return missing

    async def retire(self, serving: set[str]) -> list[str]:
        """Unload the versions not in `serving` (upstream names the routes use) that have been idle for
        `keep_s`; returns them."""
        if self.keep_s is None:
            return []
        now = self.clock()
        for name in serving:
            self._retired_at.pop(name, None)
        idle = [
            name
            for name in self.loaded
            if name not in serving
            and now - max(self._retired_at.setdefault(name, now), self.last_used.get(name, 0.0))
            >= self.keep_s
        ]
        for name in idle:
            await self.upstream.unload_adapter(name)
            self.loaded.pop(name, None)
            self._retired_at.pop(name, None)
            log.info("unloaded adapter %s from vLLM: no route serves it, idle %.0f s", name, self.keep_s)
        return idle
