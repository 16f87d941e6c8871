"""The vLLM client and start-up reconciliation against a mocked HTTP transport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.processes import free_port
from serving.errors import UpstreamError, UpstreamUnavailableError
from serving.routing import Route
from serving.serve import discover_base_model, load_adapters
from serving.upstream import VLLMClient
from tests.serving.fakes import served


def vllm(handler) -> VLLMClient:  # type: ignore[no-untyped-def]
    return VLLMClient("http://vllm", "key", transport=httpx.MockTransport(handler))


def models_response(*cards: dict) -> httpx.Response:
    return httpx.Response(200, json={"object": "list", "data": list(cards)})


def test_discover_base_prefers_the_configured_name_else_the_only_base():
    cards = [{"id": "Base", "parent": None}, {"id": "demo@v1", "parent": "Base"}]
    client = vllm(lambda request: models_response(*cards))
    assert asyncio.run(discover_base_model(client, "Base")) == "Base"
    assert asyncio.run(discover_base_model(client, "something-else")) == "Base"
    two = vllm(lambda request: models_response({"id": "a"}, {"id": "b"}))
    with pytest.raises(RuntimeError, match="which vLLM model is the base"):
        asyncio.run(discover_base_model(two, "c"))


def test_load_adapters_loads_only_missing_versions_with_the_key():
    loaded: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer key"
        if request.url.path == "/v1/models":
            return models_response({"id": "Base"}, {"id": "old@v1", "parent": "Base"})
        loaded.append(json.loads(request.content))
        return httpx.Response(200, text="Success")

    routes = {
        "a": Route("a", "new@v2", served("new@v2", "/r/new/v2"), "never", 1),
        "b": Route("b", "new@v2", served("new@v2", "/r/new/v2"), "always", 1),
        "c": Route("c", "old@v1", served("old@v1", "/r/old/v1"), "never", 1),
        "d": Route("d", "Base", None, "never", 1),
    }
    asyncio.run(load_adapters(vllm(handler), routes))
    assert loaded == [{"lora_name": "new@v2", "lora_path": "/r/new/v2"}]


def test_upstream_errors_keep_status_and_message():
    client = vllm(
        lambda r: httpx.Response(400, json={"error": {"message": "too long", "type": "BadRequestError"}})
    )
    with pytest.raises(UpstreamError) as info:
        asyncio.run(client.chat({"model": "Base", "messages": []}))
    assert info.value.status_code == 400 and info.value.message == "too long"


def test_unreachable_vllm_is_503():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(UpstreamUnavailableError):
        asyncio.run(vllm(refuse).chat({"model": "Base", "messages": []}))


async def _with_server(routes: web.RouteTableDef, use: Callable[[str], Awaitable[Any]]) -> Any:
    """Run `use(base_url)` against a real aiohttp server serving `routes` (streams go over the network)."""
    app = web.Application()
    app.add_routes(routes)
    async with TestServer(app) as server:
        return await use(str(server.make_url("")).rstrip("/"))


def test_stream_yields_decoded_chunks_until_done_with_the_key():
    routes = web.RouteTableDef()
    seen: dict[str, Any] = {}

    @routes.post("/v1/chat/completions")
    async def chat(request: web.Request) -> web.StreamResponse:
        seen["auth"], seen["body"] = request.headers.get("Authorization"), await request.json()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        lines = ('data: {"choices": [{"delta": {"content": "hi"}}]}', ": keep-alive", 'data: {"choices": []}')
        for line in (*lines, "data: [DONE]", 'data: {"after": "done"}'):
            await response.write(f"{line}\n\n".encode())
        return response

    async def use(url: str) -> list[dict[str, Any]]:
        client = VLLMClient(url, "key")
        try:
            return [chunk async for chunk in client.stream_chat({"model": "Base"})]
        finally:
            await client.aclose()

    chunks = asyncio.run(_with_server(routes, use))
    assert chunks == [{"choices": [{"delta": {"content": "hi"}}]}, {"choices": []}]
    assert seen == {"auth": "Bearer key", "body": {"model": "Base"}}


def test_a_refused_stream_keeps_vllms_status_and_message():
    routes = web.RouteTableDef()

    @routes.post("/v1/chat/completions")
    async def chat(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": {"message": "no adapter demo@v9", "type": "NotFoundError"}}, status=404
        )

    async def use(url: str) -> None:
        client = VLLMClient(url)
        try:
            async for _ in client.stream_chat({"model": "demo@v9"}):
                pass
        finally:
            await client.aclose()

    with pytest.raises(UpstreamError) as info:
        asyncio.run(_with_server(routes, use))
    assert (info.value.status_code, info.value.message) == (404, "no adapter demo@v9")


def test_an_unreachable_stream_is_503():
    async def use() -> None:
        client = VLLMClient(f"http://127.0.0.1:{free_port('127.0.0.1')}")
        try:
            async for _ in client.stream_chat({"model": "Base"}):
                pass
        finally:
            await client.aclose()

    with pytest.raises(UpstreamUnavailableError, match="unreachable"):
        asyncio.run(use())


def test_closing_a_stream_early_drops_the_connection_so_vllm_stops():
    routes = web.RouteTableDef()
    dropped = asyncio.Event()

    @routes.post("/v1/chat/completions")
    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for _ in range(1000):
                await response.write(b'data: {"choices": []}\n\n')
                await asyncio.sleep(0.01)
        except (ConnectionResetError, asyncio.CancelledError):
            dropped.set()
            raise
        return response

    async def use(url: str) -> bool:
        client = VLLMClient(url)
        stream = client.stream_chat({"model": "Base"})
        await anext(stream)
        await stream.aclose()  # what the relay does when the client goes away
        try:
            await asyncio.wait_for(dropped.wait(), timeout=5)
        finally:
            await client.aclose()
        return dropped.is_set()

    assert asyncio.run(_with_server(routes, use))


def test_a_finished_stream_hands_its_connection_back_for_the_next():
    routes = web.RouteTableDef()
    peers: list[object] = []

    @routes.post("/v1/chat/completions")
    async def chat(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices": []}\n\ndata: [DONE]\n\n')
        await asyncio.sleep(0.05)  # the body ends a moment after [DONE], as vLLM's may
        return response

    async def use(url: str) -> None:
        client = VLLMClient(url)
        try:
            for _ in range(3):
                assert [chunk async for chunk in client.stream_chat({"model": "Base"})] == [{"choices": []}]
        finally:
            await client.aclose()

    asyncio.run(_with_server(routes, use))
    assert len(peers) == 3 and len(set(peers)) == 1  # one connection: no new connect per request
