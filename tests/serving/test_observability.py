"""Metrics exposition, request ids, JSON log lines and the access log, on a tiny app (no vLLM, no network)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.types import ModelRef
from serving.errors import install_error_handlers
from serving.observability import (
    JsonFormatter,
    Metrics,
    configure_logging,
    install_request_ids,
    new_request_id,
    request_id,
)

GENERATED = re.compile(r"req-[0-9a-f]{24}")


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The rendered exposition parsed back: (sample name, labels) → value."""
    body, _ = metrics.render()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


# --- metrics -----------------------------------------------------------------------------------------------


def test_request_counter_and_histogram_carry_route_mode_status():
    metrics = Metrics()
    metrics.request("demo+rag", "rag", 200, 0.3)
    metrics.request("demo+rag", "rag", 200, 2.0)
    metrics.request("unknown", "none", 404, 0.0005)
    assert value(metrics, "lorag_requests_total", route="demo+rag", mode="rag", status="200") == 2
    assert value(metrics, "lorag_requests_total", route="unknown", mode="none", status="404") == 1
    assert value(metrics, "lorag_request_seconds_count", route="demo+rag", mode="rag") == 2
    assert value(metrics, "lorag_request_seconds_sum", route="demo+rag", mode="rag") == pytest.approx(2.3)
    # Buckets span a sub-millisecond request to a long generation.
    assert value(metrics, "lorag_request_seconds_bucket", route="unknown", mode="none", le="0.001") == 1
    assert value(metrics, "lorag_request_seconds_bucket", route="demo+rag", mode="rag", le="0.5") == 1
    assert value(metrics, "lorag_request_seconds_bucket", route="demo+rag", mode="rag", le="120.0") == 2


def test_stage_histograms_tokens_queue_rejections_and_restarts():
    metrics = Metrics()
    metrics.retrieval("base+rag", 0.02)
    metrics.first_token("base", 0.15)
    metrics.tokens("base", prompt=30, completion=12)
    metrics.tokens("base", prompt=10, completion=3)
    metrics.queue(in_flight=4, waiting=2)
    metrics.rejected("queue_full")
    metrics.upstream_restart()
    metrics.upstream_restart()
    assert value(metrics, "lorag_retrieval_seconds_count", route="base+rag") == 1
    assert value(metrics, "lorag_retrieval_seconds_bucket", route="base+rag", le="0.01") == 0
    assert value(metrics, "lorag_retrieval_seconds_bucket", route="base+rag", le="0.025") == 1
    assert value(metrics, "lorag_time_to_first_token_seconds_sum", route="base") == pytest.approx(0.15)
    assert value(metrics, "lorag_prompt_tokens_total", route="base") == 40
    assert value(metrics, "lorag_completion_tokens_total", route="base") == 15
    assert value(metrics, "lorag_requests_in_flight") == 4
    assert value(metrics, "lorag_requests_waiting") == 2
    assert value(metrics, "lorag_requests_rejected_total", reason="queue_full") == 1
    assert value(metrics, "lorag_vllm_restarts_total") == 2


def test_snapshot_info_keeps_only_the_current_snapshot():
    metrics = Metrics()
    metrics.snapshot("snap-a")
    metrics.snapshot("snap-b")
    info = {labels: v for (name, labels), v in samples(metrics).items() if name == "lorag_snapshot_info"}
    assert info == {frozenset({("snapshot", "snap-b")}): 1}
    metrics.snapshot(None)
    assert not [name for name, _ in samples(metrics) if name == "lorag_snapshot_info"]


def test_adapter_info_is_replaced_wholesale():
    metrics = Metrics()
    v1, v2 = ModelRef("demo", "v1"), ModelRef("demo", "v2")
    metrics.adapters({"base": None, "demo": v1, "demo+rag": v1})
    metrics.adapters({"base": None, "demo": v2})
    info = {labels: v for (name, labels), v in samples(metrics).items() if name == "lorag_adapter_info"}
    assert info == {
        frozenset({("route", "base"), ("adapter", ""), ("version", "")}): 1,
        frozenset({("route", "demo"), ("adapter", "demo"), ("version", "v2")}): 1,
    }


def test_two_metrics_instances_do_not_clash():
    first, second = Metrics(), Metrics()
    first.request("base", "none", 200, 0.1)
    assert value(first, "lorag_requests_total", route="base", mode="none", status="200") == 1
    assert value(second, "lorag_requests_total", route="base", mode="none", status="200") is None


def test_render_returns_prometheus_text():
    body, content_type = Metrics().render()
    assert content_type.startswith("text/plain")
    assert b"# TYPE lorag_request_seconds histogram" in body
    assert b"lorag_vllm_restarts_total 0.0" in body


# --- request ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("incoming", ["abc-123", "trace:4f.2_x", "a" * 128])
def test_plain_client_request_ids_are_kept(incoming):
    assert new_request_id(incoming) == incoming


@pytest.mark.parametrize("incoming", [None, "", "a" * 129, "evil\nline", 'x"}', "naïve", "a b"])
def test_missing_or_hostile_request_ids_are_replaced(incoming):
    assert GENERATED.fullmatch(new_request_id(incoming))


def test_generated_ids_are_unique():
    assert new_request_id(None) != new_request_id(None)


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    log = logging.getLogger("lorag.test")

    @app.get("/json")
    async def json_route() -> dict[str, str | None]:
        log.info("handling", extra={"route": "demo", "handle": object()})
        return {"seen": request_id.get()}

    @app.get("/stream")
    async def stream_route() -> StreamingResponse:
        async def events():
            for i in range(3):
                await asyncio.sleep(0.01)
                yield f"data: {i} {request_id.get()}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/broken-stream")
    async def broken_stream() -> StreamingResponse:
        async def events():
            yield "data: 0\n\n"
            raise RuntimeError("upstream vanished")

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    install_request_ids(app)
    return app


def test_json_response_carries_a_generated_id_seen_by_the_handler(app):
    response = TestClient(app).get("/json")
    rid = response.headers["x-request-id"]
    assert GENERATED.fullmatch(rid)
    assert response.json() == {"seen": rid}
    assert request_id.get() is None  # reset after the request


def test_client_id_is_echoed_and_hostile_one_replaced(app):
    client = TestClient(app)
    assert client.get("/json", headers={"X-Request-Id": "trace-42"}).headers["x-request-id"] == "trace-42"
    hostile = client.get("/json", headers={"X-Request-Id": "x" * 300})
    assert GENERATED.fullmatch(hostile.headers["x-request-id"])
    assert hostile.json()["seen"] == hostile.headers["x-request-id"]


def test_streaming_response_carries_the_id_in_header_and_body(app):
    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/stream", headers={"X-Request-Id": "stream-1"})

    response = asyncio.run(fetch())
    assert response.headers["x-request-id"] == "stream-1"
    assert response.text == "".join(f"data: {i} stream-1\n\n" for i in range(3))


def test_unexpected_500_still_carries_the_id(app, caplog):
    caplog.set_level(logging.INFO, logger="lorag.access")
    response = TestClient(app, raise_server_exceptions=False).get("/boom", headers={"X-Request-Id": "r500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "r500"
    assert [(r.status, r.path) for r in caplog.records if r.name == "lorag.access"] == [(500, "/boom")]


def test_stream_that_breaks_midway_is_logged_as_incomplete(app, caplog):
    caplog.set_level(logging.INFO, logger="lorag.access")
    with pytest.raises(RuntimeError):
        TestClient(app).get("/broken-stream")
    (record,) = [r for r in caplog.records if r.name == "lorag.access"]
    assert (record.status, record.completed) == (200, False)
    assert GENERATED.fullmatch(record.request_id)


# --- logs --------------------------------------------------------------------------------------------------


@pytest.fixture
def json_log():
    """Log lines as a StreamHandler with JsonFormatter writes them (formatted at emission, in context)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_json_formatter_inside_a_request_has_request_id_and_extras(app, json_log):
    TestClient(app).get("/json", headers={"X-Request-Id": "log-7"})
    line = next(x for x in json_log() if x["logger"] == "lorag.test")
    assert line["request_id"] == "log-7"
    assert line["message"] == "handling"
    assert line["level"] == "info"
    assert line["route"] == "demo"
    assert "handle" not in line  # not JSON-serialisable: dropped
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"])


def test_json_formatter_outside_a_request_and_with_exceptions():
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, "f.py", 1, "failed %s", ("it",), None)
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed it"
    assert "request_id" not in line
    assert "ValueError: bad" in line["exc_info"]


def test_access_line_per_request_with_status_and_duration(app, caplog):
    caplog.set_level(logging.INFO, logger="lorag.access")
    client = TestClient(app)
    client.get("/json", headers={"X-Request-Id": "a-1"})
    client.get("/stream", headers={"X-Request-Id": "a-2"})
    client.get("/missing", headers={"X-Request-Id": "a-3"})
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "lorag.access"]
    assert [(x["request_id"], x["method"], x["path"], x["status"]) for x in lines] == [
        ("a-1", "GET", "/json", 200),
        ("a-2", "GET", "/stream", 200),
        ("a-3", "GET", "/missing", 404),
    ]
    # The stream's line is written when its body ends: after three 10 ms sleeps.
    assert lines[1]["duration_ms"] >= 30
    assert all(isinstance(x["duration_ms"], float) for x in lines)


def test_configure_logging_is_idempotent_and_writes_json_lines(capsys):
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        configure_logging("debug")
        configure_logging("info", json_logs=True)
        ours = [h for h in root.handlers if h.get_name() == "lorag"]
        assert len(ours) == 1
        assert root.level == logging.INFO
        token = request_id.set("cfg-1")
        try:
            logging.getLogger("uvicorn.error").info("started")
        finally:
            request_id.reset(token)
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert (line["logger"], line["message"], line["request_id"]) == ("uvicorn.error", "started", "cfg-1")

        configure_logging("warning", json_logs=False)
        logging.getLogger("lorag.x").warning("plain")
        assert capsys.readouterr().err.strip().endswith("WARNING lorag.x: plain")
    finally:
        for handler in [h for h in root.handlers if h.get_name() == "lorag"]:
            root.removeHandler(handler)
        root.handlers[:] = before[0]
        root.setLevel(before[1])


def test_configure_logging_refuses_unknown_levels():
    with pytest.raises(ValueError, match="verbose"):
        configure_logging("verbose")
