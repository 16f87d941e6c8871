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
from typing import TYPE_CHECKING, Any, cast

from core.models import resolve_model
from core.settings import Settings
from core.vllm_server import ManagedVLLM
from serving.adapters import RegisteredAdapters
from serving.answer_length import AnswerLength
from serving.chat import Budget
from serving.embeddings import EmbeddingsHandler
from serving.live_index import LiveSearcher, SnapshotSearcher
from serving.replicas import ReplicaSet, replica_urls
from serving.routing import Route, build_routes
from serving.thresholds import ThresholdBook
from serving.upstream import VLLMClient

if TYPE_CHECKING:
    from fastapi import FastAPI

    from serving.app import GatewayParts

log = logging.getLogger("lorag.serve")


class UnsafeBindError(RuntimeError):
    """Refusing to listen on a non-loopback address without API keys."""


class PortInUseError(RuntimeError):
    """The gateway's address is taken: found before vLLM is started, not after."""


def bind_listener(host: str, port: int) -> socket.socket:
    """The gateway's socket, bound now and listened on only when the app is ready to answer.

    Binding first fails fast on a taken port, and holds the port while vLLM starts: vLLM and its engine
    pick free ports of their own (ZMQ, torch distributed) and, if the gateway only bound after them, could
    take its port in the meantime (seen in CI as "address already in use" after a healthy vLLM start). Not
    listening yet keeps a client's connection refused, not hanging, until then."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart beside TIME_WAIT connections
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUseError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; set --port or LORAG_PORT"
        ) from exc
    return sock


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


def upstream_client(settings: Settings, endpoint: VLLMEndpoint, timeout_s: float) -> VLLMClient | ReplicaSet:
    """The gateway's vLLM client; with `vllm_replicas`, one that loads adapters into every replica."""
    client = VLLMClient(endpoint.url, endpoint.api_key, timeout_s)
    spec = settings.vllm_replicas
    if not spec:
        return client
    return ReplicaSet(client, lambda: replica_urls(spec), endpoint.api_key, timeout_s)


async def load_adapters(client: VLLMClient | ReplicaSet, routes: dict[str, Route]) -> list[dict[str, Any]]:
    """Make sure vLLM serves every adapter version the routes use (loading is skipped if already there);
    returns vLLM's model cards as they were before loading."""
    cards = await client.models()
    present = {card["id"] for card in cards}
    for adapter in {route.adapter for route in routes.values() if route.adapter}:
        if adapter.upstream_name not in present:
            log.info("loading adapter %s from %s", adapter.upstream_name, adapter.path)
            await client.load_adapter(adapter.upstream_name, adapter.path)
    return cards


@dataclass
class VLLMEndpoint:
    """Where vLLM is and how to reach it; `managed` is set when lorag starts it."""

    url: str
    api_key: str | None
    base_model: str
    managed: ManagedVLLM | None = None


def locate_vllm(settings: Settings) -> VLLMEndpoint:
    """The external vLLM (`vllm_url`), asked for its base model's name; else the managed one, not yet
    started (`start_managed`)."""
    if settings.vllm_url:
        client = VLLMClient(settings.vllm_url, settings.vllm_api_key)
        base = asyncio.run(_with_client(client, discover_base_model(client, settings.chat_model)))
        return VLLMEndpoint(settings.vllm_url, settings.vllm_api_key, base)
    model_path = resolve_model(settings.chat_model, settings.cache_dir)
    log_path = settings.home / "logs" / "vllm.log"
    managed = ManagedVLLM(model_path, settings.chat_model, settings.vllm, log_path, settings.vllm_api_key)
    return VLLMEndpoint(managed.url, managed.api_key, settings.chat_model, managed)


def start_managed(endpoint: VLLMEndpoint, model: str) -> None:
    """Start the managed vLLM, if there is one, and wait until it is healthy."""
    managed = endpoint.managed
    if managed is None:
        return
    log.info("starting vLLM (%s) on %s; log: %s", model, managed.url, managed.log_path)
    managed.start()
    try:
        managed.wait_healthy()
    except BaseException:
        managed.stop()
        raise


def context_budget(settings: Settings, endpoint: VLLMEndpoint, cards: list[dict[str, Any]]) -> Budget | None:
    """How to keep prompts within the model's context: its tokenizer and the `max_model_len` vLLM reports
    in its model `cards`."""
    from serving.budget import load_counter, local_model_path, model_context_len

    context_len = model_context_len(cards, endpoint.base_model)
    if context_len is None:
        log.warning("vLLM does not report max_model_len for %s: sources are not trimmed", endpoint.base_model)
        return None
    counter = load_counter(local_model_path(settings.chat_model, settings.cache_dir))
    return Budget(counter, context_len) if counter else None


async def _with_client(client: VLLMClient | ReplicaSet, coroutine):  # type: ignore[no-untyped-def]
    try:
        return await coroutine
    finally:
        await client.aclose()


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def gateway_parts(
    settings: Settings,
    endpoint: VLLMEndpoint,
    routes: dict[str, Route],
    searcher: LiveSearcher | None,
    embedder: Any,
) -> GatewayParts:
    """Load the routes' adapters into the running vLLM, then gather what the gateway app is built from."""
    from serving.app import GatewayOptions, GatewayParts

    loader = upstream_client(settings, endpoint, timeout_s=60)
    cards = asyncio.run(_with_client(loader, load_adapters(loader, routes)))
    client = upstream_client(settings, endpoint, settings.request_timeout_s)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = []
    thresholds, budget, embeddings = None, None, None
    if searcher is not None:
        background.append(lambda: searcher.follow(settings.snapshot_poll_s))
        if settings.refresh_every_s:
            background.append(scheduled_refresh(settings, settings.refresh_every_s, embedder))
        thresholds = ThresholdBook(settings.thresholds_dir, embedder.name)
        background.append(lambda: thresholds.follow(settings.snapshot_poll_s))
        budget = context_budget(settings, endpoint, cards)
        embeddings = EmbeddingsHandler(embedder, getattr(embedder, "count_tokens", None))
    return GatewayParts(
        routes,
        client,
        endpoint.base_model,
        searcher,
        RegisteredAdapters(settings.adapters_dir),
        thresholds,
        budget,
        embeddings,
        managed=endpoint.managed if settings.restart_vllm else None,
        background=background,
        on_shutdown=client.aclose,
        options=GatewayOptions.from_settings(settings),
    )


def serve(settings: Settings) -> None:
    """Run the gateway until interrupted; a managed vLLM is stopped on the way out. What can fail fast
    (keys, the port, adapters, an external vLLM's base model) is checked before the slow parts: loading the
    embedder and starting vLLM."""
    from serving.observability import configure_logging

    logging.getLogger().handlers.clear()  # the CLI's plain handler: the gateway logs one JSON line per event
    configure_logging("info", settings.json_logs)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call is noise
    check_bind(settings)
    if settings.refresh_every_s and not needs_index(settings):
        raise ValueError("--refresh-every needs a route that retrieves; no configured route does")
    listener = bind_listener(settings.host, settings.port)
    try:
        _serve_on(listener, settings)
    finally:
        listener.close()


def _serve_on(listener: socket.socket, settings: Settings) -> None:
    from serving.app import build_app

    endpoint = locate_vllm(settings)
    adapters = RegisteredAdapters(settings.adapters_dir).for_routes(settings.routes, settings.chat_model)
    length = AnswerLength(settings.default_max_tokens, settings.max_tokens_cap)
    routes = build_routes(settings.routes, endpoint.base_model, adapters, length)
    searcher, embedder = open_searcher(settings) if needs_index(settings) else (None, None)
    start_managed(endpoint, settings.chat_model)
    try:
        app = build_app(gateway_parts(settings, endpoint, routes, searcher, embedder))
        log.info("gateway on http://%s:%d/v1 (routes: %s)", settings.host, settings.port, ", ".join(routes))
        run_server(app, listener)
    finally:
        if endpoint.managed is not None:
            endpoint.managed.stop()


def run_server(app: FastAPI, listener: socket.socket) -> None:
    """Serve `app` on the bound `listener` with uvicorn until SIGINT or SIGTERM, letting running requests
    finish."""
    import uvicorn

    # uvicorn re-raises the signal it stopped on once it is done; SIGTERM's default action would then end
    # the process before `finally` stops vLLM, so SIGTERM exits like SIGINT does.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # On SIGINT/SIGTERM uvicorn stops accepting, lets running requests (streams too) finish for up to
    # 30 s, then runs the app's shutdown; vLLM (its own session, so no terminal signal reaches it)
    # is stopped last, after the streams it feeds have drained.
    config = uvicorn.Config(
        app, log_level="info", log_config=None, access_log=False, timeout_graceful_shutdown=30
    )
    uvicorn.Server(config).run(sockets=[listener])
