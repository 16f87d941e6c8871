"""Adapter loads reach every vLLM replica; generation goes through the Service; vLLM's "already loaded"
is success."""

from __future__ import annotations

import json

import httpx
import pytest

from serving.replicas import ReplicaSet, replica_urls
from serving.upstream import VLLMClient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Replica:
    """One fake vLLM server: its loaded adapters, and what was generated on it."""

    def __init__(self, loaded: set[str] | None = None) -> None:
        self.loaded = set(loaded or ())
        self.generated = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/load_lora_adapter":
            name = json.loads(request.content)["lora_name"]
            if name in self.loaded:
                message = f"The lora adapter '{name}' has already been loaded."
                return httpx.Response(400, json={"error": {"message": message, "type": "BadRequestError"}})
            self.loaded.add(name)
            return httpx.Response(200, text="ok")
        if request.url.path == "/v1/models":
            return httpx.Response(
                200, json={"data": [{"id": "base"}, *({"id": n} for n in sorted(self.loaded))]}
            )
        self.generated += 1
        return httpx.Response(200, json={"choices": []})


def test_replica_urls_from_a_list_or_a_single_url():
    assert replica_urls("http://a:1, http://b:2/") == ["http://a:1", "http://b:2"]
    assert replica_urls("http://127.0.0.1:8000") == ["http://127.0.0.1:8000"]  # one address: itself
    assert replica_urls("http://no-such-host.invalid:8000") == ["http://no-such-host.invalid:8000"]


@pytest.mark.anyio
async def test_loads_fan_out_models_intersect_generation_uses_the_service(monkeypatch):
    replicas = {"http://r1:8000": Replica({"demo@v1"}), "http://r2:8000": Replica()}
    service = Replica()

    def client_for(url: str, api_key=None, timeout_s=300.0):  # type: ignore[no-untyped-def]
        fake = replicas.get(url, service)
        return VLLMClient(url, api_key, timeout_s, transport=httpx.MockTransport(fake.handler))

    monkeypatch.setattr("serving.replicas.VLLMClient", client_for)
    group = ReplicaSet(client_for("http://svc:8000"), lambda: list(replicas), None, 30.0)
    assert [card["id"] for card in await group.models()] == ["base"]  # demo@v1 is on r1 only
    await group.load_adapter("demo@v1", "/adapters/demo/v1")  # r1 says "already loaded": fine
    assert all("demo@v1" in replica.loaded for replica in replicas.values())
    assert [card["id"] for card in await group.models()] == ["base", "demo@v1"]
    await group.chat({"model": "base", "messages": []})
    assert service.generated == 1 and all(r.generated == 0 for r in replicas.values())
    await group.aclose()
