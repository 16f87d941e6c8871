"""The vLLM client and start-up reconciliation against a mocked HTTP transport."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

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


def test_stream_yields_decoded_chunks_until_done():
    body = 'data: {"choices": [{"delta": {"content": "hi"}}]}\n\ndata: {"choices": []}\n\ndata: [DONE]\n\n'
    client = vllm(lambda r: httpx.Response(200, text=body, headers={"content-type": "text/event-stream"}))

    async def collect() -> list:
        return [chunk async for chunk in client.stream_chat({"model": "Base"})]

    assert asyncio.run(collect()) == [{"choices": [{"delta": {"content": "hi"}}]}, {"choices": []}]
