"""Observability for the gateway: Prometheus metrics, JSON log lines and a request id on every request.

`Metrics` is built once per app (kept on `app.state`) and fed by the chat handler; `install_request_ids`
adds the middleware that gives every request an id, echoes it as `X-Request-Id` and logs one access line;
`configure_logging` makes every log line (ours, uvicorn's) one JSON object carrying that id.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.types import ModelRef

# From a cache hit on a tiny route (~1 ms) to a long generation (minutes); Prometheus' defaults stop at 10 s.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)


class Metrics:
    """The gateway's Prometheus metrics, in its own CollectorRegistry (so several apps/tests never clash)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """A fresh registry (with process CPU/memory metrics) unless the caller brings one."""
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
        self.registry = registry
        r = registry
        self._requests = Counter(
            "lorag_requests_total",
            "Chat requests by route, mode and status.",
            ["route", "mode", "status"],
            registry=r,
        )
        self._request_seconds = Histogram(
            "lorag_request_seconds",
            "Total request time.",
            ["route", "mode"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._retrieval_seconds = Histogram(
            "lorag_retrieval_seconds",
            "Retrieval (embed + search) time.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._first_token_seconds = Histogram(
            "lorag_time_to_first_token_seconds",
            "Time from request to the first streamed chunk.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._prompt_tokens = Counter("lorag_prompt_tokens_total", "Prompt tokens.", ["route"], registry=r)
        self._completion_tokens = Counter(
            "lorag_completion_tokens_total", "Completion tokens.", ["route"], registry=r
        )
        self._snapshot = Gauge(
            "lorag_snapshot_info", "The index snapshot being served.", ["snapshot"], registry=r
        )
        self._adapters = Gauge(
            "lorag_adapter_info",
            "The adapter each route serves.",
            ["route", "adapter", "version"],
            registry=r,
        )
        self._in_flight = Gauge("lorag_requests_in_flight", "Requests being served.", registry=r)
        self._waiting = Gauge("lorag_requests_waiting", "Requests queued for a slot.", registry=r)
        self._rejected = Counter("lorag_requests_rejected_total", "Requests refused.", ["reason"], registry=r)
        self._restarts = Counter("lorag_vllm_restarts_total", "Restarts of the managed vLLM.", registry=r)
        self._snapshot_labels: set[tuple[str, ...]] = set()
        self._adapter_labels: set[tuple[str, ...]] = set()

    def request(self, route: str, mode: str, status: int, seconds: float) -> None:
        """One finished request. `mode` is "rag" (retrieved) or "none"; `route` is "unknown" when the model
        could not be resolved (never the raw client string, which would make label cardinality unbounded)."""
        self._requests.labels(route, mode, str(status)).inc()
        self._request_seconds.labels(route, mode).observe(seconds)

    def retrieval(self, route: str, seconds: float) -> None:
        """Time spent retrieving for one request."""
        self._retrieval_seconds.labels(route).observe(seconds)

    def first_token(self, route: str, seconds: float) -> None:
        """Time to the first streamed chunk of one request."""
        self._first_token_seconds.labels(route).observe(seconds)

    def tokens(self, route: str, prompt: int, completion: int) -> None:
        """Token usage of one request, as vLLM reported it."""
        self._prompt_tokens.labels(route).inc(max(prompt, 0))
        self._completion_tokens.labels(route).inc(max(completion, 0))

    def snapshot(self, snapshot_id: str | None) -> None:
        """The snapshot now served (None: none loaded); the previous one's series is removed."""
        _replace(self._snapshot, self._snapshot_labels, [] if snapshot_id is None else [(snapshot_id,)])
        self._snapshot_labels = set() if snapshot_id is None else {(snapshot_id,)}

    def adapters(self, served: Mapping[str, ModelRef | None]) -> None:
        """Route → served adapter version (`demo@v1`) or None for the base model; replaces the previous
        mapping. Base-model routes get empty `adapter` and `version` labels so every route is listed."""
        labels = [
            (route, ref.name if ref else "", (ref and ref.version) or "") for route, ref in served.items()
        ]
        _replace(self._adapters, self._adapter_labels, labels)
        self._adapter_labels = set(labels)

    def queue(self, in_flight: int, waiting: int) -> None:
        """Current admission state."""
        self._in_flight.set(in_flight)
        self._waiting.set(waiting)

    def rejected(self, reason: str) -> None:
        """A request refused before it was served (e.g. "queue_full")."""
        self._rejected.labels(reason).inc()

    def upstream_restart(self) -> None:
        """The managed vLLM was restarted."""
        self._restarts.inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type, for a `GET /metrics` route."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _replace(gauge: Gauge, old: set[tuple[str, ...]], new: Iterable[tuple[str, ...]]) -> None:
    """Set the info series `new` to 1, then drop the rest of `old`: a scrape in between may see both, never
    none."""
    new = set(new)
    for labels in new:
        gauge.labels(*labels).set(1)
    for labels in old - new:
        gauge.remove(*labels)


# --- request ids -------------------------------------------------------------------------------------------

request_id: ContextVar[str | None] = ContextVar("lorag_request_id", default=None)
"""The current request's id; set by the middleware, read by the log formatter (and anyone forwarding it)."""

_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id(incoming: str | None) -> str:
    """The client's `X-Request-Id` when it is short and plain (it ends up in logs, so no newlines, quotes or
    control characters); otherwise a fresh "req-" + 24 hex characters."""
    if incoming is not None and _CLIENT_ID.fullmatch(incoming):
        return incoming
    return "req-" + secrets.token_hex(12)


# --- logging -----------------------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id (inside a request), exc_info (when
    present) and the record's `extra=` fields that JSON can carry (others are dropped, not stringified)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in entry and _jsonable(value):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    """Plain lines for a terminal, with the request id after the logger name when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None) or request_id.get()
        record.request_tag = f" [{rid}]" if rid else ""
        return super().format(record)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


_HANDLER_NAME = "lorag"


def configure_logging(level: str = "info", json_logs: bool = True) -> None:
    """Send the root logger and uvicorn's loggers to stderr, as JSON lines or plain text. Calling it again
    replaces the handler it installed (other handlers, e.g. pytest's, are left alone). Run uvicorn with
    `log_config=None`, or it installs its own handlers over these."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        JsonFormatter()
        if json_logs
        else _TextFormatter("%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s")
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # Through the root handler, so uvicorn's lines are formatted (and carry request ids) like ours.
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True


# --- middleware --------------------------------------------------------------------------------------------

access_log = logging.getLogger("lorag.access")


class RequestIdMiddleware:
    """Pure ASGI (BaseHTTPMiddleware would buffer streams and swallow cancellation): sets `request_id`,
    adds `X-Request-Id` to the response and logs one access line when the response body ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call; non-HTTP scopes (lifespan) pass straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = new_request_id(incoming)
        token = request_id.set(rid)
        start = time.perf_counter()
        status: int | None = None
        logged = False

        def log_access(completed: bool) -> None:
            nonlocal logged
            logged = True
            duration_ms = round((time.perf_counter() - start) * 1000, 2)
            code = status if status is not None else 500
            method, path = scope["method"], scope["path"]
            # The id rides on the record too, for handlers that format later, outside this context.
            extra = {
                "request_id": rid,
                "method": method,
                "path": path,
                "status": code,
                "duration_ms": duration_ms,
            }
            if not completed:
                extra["completed"] = False  # the client went away or the app failed mid-response
            access_log.info("%s %s %d %.1fms", method, path, code, duration_ms, extra=extra)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode("latin-1"))]}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                log_access(completed=True)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if not logged:
                log_access(completed=False)
            request_id.reset(token)


def install_request_ids(app: FastAPI) -> None:
    """Wrap the whole app (outside Starlette's error middleware, so unexpected 500s carry the id too) in
    `RequestIdMiddleware`. Call before the app first serves."""
    build = app.build_middleware_stack

    def build_with_ids() -> ASGIApp:
        return RequestIdMiddleware(build())

    # `add_middleware` would put it inside ServerErrorMiddleware, whose 500 responses would then lack the id.
    app.build_middleware_stack = build_with_ids  # type: ignore[method-assign]
