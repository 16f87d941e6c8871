"""`lorag serve`: start (or reach) vLLM, load the routes' adapters, open the index, run the gateway."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from core.models import resolve_model
from core.settings import Settings
from serving.chat import Budget
from serving.embeddings import EmbeddingsHandler
from serving.live_index import LiveSearcher, SnapshotSearcher
from serving.replicas import ReplicaSet, replica_urls
from serving.routing import AdapterRef, Route, RouteConfigError, build_routes
from serving.thresholds import ThresholdBook
from serving.upstream import VLLMClient
from serving.vllm_process import ManagedVLLM

log = logging.getLogger("lorag.serve")


class UnsafeBindError(RuntimeError):
    """Refusing to listen on a non-loopback address without API keys."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to them (e.g. localhost)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except socket.gaierror:
            return False
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_bind(settings: Settings) -> None:
    """Unsafe defaults are refused at start-up: a public bind needs API keys."""
    if not (settings.api_keys or settings.admin_keys) and not is_loopback(settings.host):
        raise UnsafeBindError(
            f"refusing to listen on {settings.host} without API keys: "
            "set `api_keys` in lorag.yaml or LORAG_API_KEYS='[\"...\"]'"
        )


def registered_adapters(settings: Settings) -> dict[str, AdapterRef]:
    """The current version of every adapter a route names, from the registry."""
    from training.registry import AdapterRegistry

    registry = AdapterRegistry(settings.adapters_dir)
    refs: dict[str, AdapterRef] = {}
    for config in settings.routes.values():
        if config.adapter and config.adapter not in refs:
            current = registry.current(config.adapter)
            if current is None:
                continue
            base = current.manifest.get("base_model")
            if base and base != settings.chat_model:
                raise RouteConfigError(
                    f"adapter {current.served_name} was trained on {base!r}, but chat_model is "
                    f"{settings.chat_model!r}: serve it with that base model or retrain the adapter"
                )
            refs[config.adapter] = AdapterRef(current.served_name, str(Path(current.path).resolve()))
    return refs


def adapter_lookup(settings: Settings) -> Callable[[str, str], AdapterRef | None]:
    """Registry lookups for pinned requests (`model="demo@v2"`); reads the registry on each call, so
    versions registered after start-up are found too."""
    from training.registry import AdapterNotFoundError, AdapterRegistry

    registry = AdapterRegistry(settings.adapters_dir)

    def lookup(name: str, version: str) -> AdapterRef | None:
        try:
            found = registry.get(name, version)
        except AdapterNotFoundError:
            return None
        return AdapterRef(found.served_name, str(Path(found.path).resolve()))

    return lookup


def adapter_versions(settings: Settings) -> Callable[[str], list[str]]:
    """The registered versions of an adapter, for `/v1/models` (read when the list is built)."""
    from training.registry import AdapterRegistry

    registry = AdapterRegistry(settings.adapters_dir)
    return registry.versions


def current_adapter(settings: Settings) -> Callable[[str], AdapterRef | None]:
    """The registry alias of an adapter, read on each call (promotions happen in other processes)."""
    from training.registry import AdapterRegistry

    registry = AdapterRegistry(settings.adapters_dir)

    def current(name: str) -> AdapterRef | None:
        version = registry.current(name)
        return AdapterRef(version.served_name, str(Path(version.path).resolve())) if version else None

    return current


def needs_index(settings: Settings) -> bool:
    return any(route.retrieval != "never" for route in settings.routes.values())


def open_searcher(settings: Settings) -> tuple[LiveSearcher, Any]:
    """A searcher that follows the index's current snapshot, with the embedder loaded (loaded once and
    shared by every snapshot it opens; this is the slow part of start-up)."""
    from retrieval.embedders import load_embedder
    from retrieval.search import open_retriever

    embedder = load_embedder(settings.embedder, settings.cache_dir)

    def open_current(index_dir: Path) -> SnapshotSearcher:
        # Retriever's keyword arguments are a superset of what the protocol's `**options` promise.
        return cast(SnapshotSearcher, open_retriever(index_dir, embedder))

    return LiveSearcher(settings.index_dir, open_current, grace_s=settings.request_timeout_s + 30), embedder


def scheduled_refresh(
    settings: Settings, interval_s: float, embedder: Any
) -> Callable[[], Coroutine[Any, Any, None]]:
    """The in-process refresh schedule (`--refresh-every`), with the gateway's loaded embedder: a failed or
    skipped refresh is logged and the current snapshot keeps serving; the follower picks up a new one."""
    from retrieval.build import refresh

    async def run() -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                result = await asyncio.to_thread(refresh, settings, False, embedder)
                log.info("scheduled refresh: %s", result.summary())
            except Exception as exc:  # noqa: BLE001 - a refresh must never take the gateway down
                log.warning("scheduled refresh failed, still serving the current snapshot: %s", exc)

    return run


async def discover_base_model(client: VLLMClient, preferred: str) -> str:
    """The name an external vLLM serves its base model under: `preferred` if served, else the only base."""
    models = await client.models()
    bases = [card["id"] for card in models if not card.get("parent")]
    if preferred in bases:
        return preferred
    if len(bases) == 1:
        return str(bases[0])
    raise RuntimeError(f"cannot tell which vLLM model is the base: {bases}; set chat_model to one of them")


def upstream_client(settings: Settings, upstream: Upstream, timeout_s: float) -> VLLMClient | ReplicaSet:
    """The gateway's vLLM client; with `vllm_replicas`, one that loads adapters into every replica."""
    client = VLLMClient(upstream.url, upstream.api_key, timeout_s)
    spec = settings.vllm_replicas
    if not spec:
        return client
    return ReplicaSet(client, lambda: replica_urls(spec), upstream.api_key, timeout_s)


async def load_adapters(client: VLLMClient | ReplicaSet, routes: dict[str, Route]) -> list[dict[str, Any]]:
    """Make sure vLLM serves every adapter version the routes use (loading is skipped if already there);
    returns vLLM's model cards as they were before loading."""
    cards = await client.models()
    served = {card["id"] for card in cards}
    for adapter in {route.adapter for route in routes.values() if route.adapter}:
        if adapter.served_name not in served:
            log.info("loading adapter %s from %s", adapter.served_name, adapter.path)
            await client.load_adapter(adapter.served_name, adapter.path)
    return cards


@dataclass
class Upstream:
    """Where vLLM is and how to reach it; `managed` is set when lorag started it."""

    url: str
    api_key: str | None
    base_model: str
    managed: ManagedVLLM | None = None


def start_upstream(settings: Settings) -> Upstream:
    """Use the external vLLM (`vllm_url`) or start the managed one and wait for it to be healthy."""
    if settings.vllm_url:
        client = VLLMClient(settings.vllm_url, settings.vllm_api_key)
        base = asyncio.run(_with_client(client, discover_base_model(client, settings.chat_model)))
        return Upstream(settings.vllm_url, settings.vllm_api_key, base)
    model_path = resolve_model(settings.chat_model, settings.cache_dir)
    log_path = settings.home / "logs" / "vllm.log"
    managed = ManagedVLLM(model_path, settings.chat_model, settings.vllm, log_path, settings.vllm_api_key)
    log.info("starting vLLM (%s) on %s; log: %s", settings.chat_model, managed.url, managed.log_path)
    managed.start()
    try:
        managed.wait_healthy()
    except BaseException:
        managed.stop()
        raise
    return Upstream(managed.url, managed.api_key, settings.chat_model, managed)


def context_budget(settings: Settings, upstream: Upstream, cards: list[dict[str, Any]]) -> Budget | None:
    """How to keep prompts within the model's context: its tokenizer and the `max_model_len` vLLM reports
    in its model `cards`."""
    from serving.budget import load_counter, local_model_path, model_context_len

    context_len = model_context_len(cards, upstream.base_model)
    if context_len is None:
        log.warning("vLLM does not report max_model_len for %s: sources are not trimmed", upstream.base_model)
        return None
    counter = load_counter(local_model_path(settings.chat_model, settings.cache_dir))
    return Budget(counter, context_len, settings.answer_reserve_tokens) if counter else None


async def _with_client(client: VLLMClient | ReplicaSet, coroutine):  # type: ignore[no-untyped-def]
    try:
        return await coroutine
    finally:
        await client.aclose()


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(settings: Settings) -> None:
    """Run the gateway until interrupted; a managed vLLM is stopped on the way out."""
    import uvicorn

    from serving.app import Limits, build_app
    from serving.observability import configure_logging

    logging.getLogger().handlers.clear()  # the CLI's plain handler: the gateway logs one JSON line per event
    configure_logging("info", settings.json_logs)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call is noise
    check_bind(settings)
    adapters = registered_adapters(settings)
    build_routes(
        settings.routes, settings.chat_model, adapters
    )  # fail on a missing adapter before vLLM starts
    searcher, embedder = open_searcher(settings) if needs_index(settings) else (None, None)
    if settings.refresh_every_s and searcher is None:
        raise ValueError("--refresh-every needs a route that retrieves; no configured route does")
    upstream = start_upstream(settings)
    try:
        routes = build_routes(settings.routes, upstream.base_model, adapters)
        loader = upstream_client(settings, upstream, timeout_s=60)
        cards = asyncio.run(_with_client(loader, load_adapters(loader, routes)))
        client = upstream_client(settings, upstream, settings.request_timeout_s)
        background = []
        thresholds, budget, embeddings = None, None, None
        if searcher is not None:
            assert embedder is not None  # opened with the searcher
            background.append(lambda: searcher.follow(settings.snapshot_poll_s))
            if settings.refresh_every_s:
                background.append(scheduled_refresh(settings, settings.refresh_every_s, embedder))
            thresholds = ThresholdBook(settings.thresholds_dir, embedder.name)
            background.append(lambda: thresholds.follow(settings.snapshot_poll_s))
            budget = context_budget(settings, upstream, cards)
            embeddings = EmbeddingsHandler(embedder, getattr(embedder, "count_tokens", None))
        app = build_app(
            routes,
            client,
            searcher,
            base_model=upstream.base_model,
            api_keys=settings.api_keys,
            admin_keys=settings.admin_keys,
            limits=Limits.from_settings(settings),
            on_shutdown=client.aclose,
            background=background,
            adapter_version=adapter_lookup(settings),
            versions=adapter_versions(settings),
            thresholds=thresholds,
            budget=budget,
            embeddings=embeddings,
            managed=upstream.managed if settings.restart_vllm else None,
            current_adapter=current_adapter(settings),
            adapter_poll_s=settings.adapter_poll_s,
            adapter_keep_s=settings.adapter_keep_s,
        )
        log.info("gateway on http://%s:%d/v1 (routes: %s)", settings.host, settings.port, ", ".join(routes))
        # uvicorn re-raises the signal it stopped on once it is done; SIGTERM's default action would then end
        # the process before `finally` stops vLLM, so SIGTERM exits like SIGINT does.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        # On SIGINT/SIGTERM uvicorn stops accepting, lets running requests (streams too) finish for up to
        # 30 s, then runs the app's shutdown; vLLM (its own session, so no terminal signal reaches it)
        # is stopped last, after the streams it feeds have drained.
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="info",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    finally:
        if upstream.managed is not None:
            upstream.managed.stop()
