"""Two registries sharing one vLLM: each gateway's `demo@v2` is loaded under its own content-hashed name,
so neither serves the other's weights; clients, metrics and `/v1/models` still see `demo@v2`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import RouteConfig
from serving.adapters import RegisteredAdapters
from serving.app import GatewayParts, build_app
from serving.routing import build_routes
from tests.serving.fakes import BASE, FakeUpstream
from training.registry import AdapterRegistry

ROUTES = {"demo": RouteConfig(adapter="demo")}


class SharedVLLM(FakeUpstream):
    """Like vLLM: a name it already holds counts as loaded, whatever path comes with it; answers name the
    files that answered."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: dict[str, str] = {}

    async def load_adapter(self, served_name: str, path: str) -> None:
        self.paths.setdefault(served_name, path)
        await super().load_adapter(served_name, path)

    def _answer(self, body: dict[str, Any]) -> str:
        return f"from {self.paths.get(body['model'], 'the base model')}"


def registry(root: Path, weights: bytes) -> RegisteredAdapters:
    """demo v1 (current) and v2, whose weights are `weights`."""
    source = root / "source"
    source.mkdir(parents=True)
    (source / "adapter_config.json").write_text("{}")
    registry = AdapterRegistry(root / "adapters")
    for number, content in ((1, b"shared-v1"), (2, weights)):
        (source / "adapter_model.safetensors").write_bytes(content)
        registry.register("demo", source, {}, make_current=number == 1)
    return RegisteredAdapters(registry.root)


def gateway(adapters: RegisteredAdapters, vllm: SharedVLLM) -> TestClient:
    routes = build_routes(ROUTES, BASE, adapters.for_routes(ROUTES, BASE))
    return TestClient(build_app(GatewayParts(routes, vllm, BASE, registry=adapters)))


@pytest.fixture
def vllm() -> SharedVLLM:
    return SharedVLLM()


def ask(client: TestClient, model: str) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return client.post("/v1/chat/completions", json=body).json()


def test_each_gateway_is_answered_by_its_own_demo_v2(tmp_path, vllm):
    first = registry(tmp_path / "a", b"weights-a")
    second = registry(tmp_path / "b", b"weights-b")
    a, b = gateway(first, vllm), gateway(second, vllm)
    reply_a, reply_b = ask(a, "demo@v2"), ask(b, "demo@v2")
    assert str((tmp_path / "a").resolve()) in reply_a["choices"][0]["message"]["content"]
    assert str((tmp_path / "b").resolve()) in reply_b["choices"][0]["message"]["content"]
    names = [name for name, _ in vllm.loaded]
    assert len(set(names)) == 2 and all(name.startswith("demo@v2-") for name in names)
    for reply in (reply_a, reply_b):  # what clients see has no hash in it
        assert reply["model"] == "demo@v2"
        assert (reply["lorag"]["adapter"], reply["lorag"]["adapter_version"]) == ("demo@v2", "v2")


def test_clients_metrics_and_models_show_the_plain_name(tmp_path, vllm):
    adapters = registry(tmp_path, b"weights")
    client = gateway(adapters, vllm)
    v1 = adapters.current("demo")
    assert v1 is not None and vllm.bodies == []
    assert ask(client, "demo")["lorag"]["adapter"] == "demo@v1"
    assert vllm.bodies[-1]["model"] == v1.upstream_name != "demo@v1"
    card = client.get("/v1/models").json()["data"][0]
    assert card["root"] == card["lorag"]["adapter"] == "demo@v1" and card["lorag"]["versions"] == ["v1", "v2"]
    metrics = client.get("/metrics").text
    assert 'lorag_adapter_info{adapter="demo",route="demo",version="v1"} 1.0' in metrics
    assert client.get("/admin/status").json()["adapters"] == [v1.upstream_name]
