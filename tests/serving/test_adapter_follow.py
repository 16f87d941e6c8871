"""The gateway follows registry aliases (load first, then switch) and re-loads what vLLM lost."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.adapter_follow import AdapterFollower, retarget
from serving.app import build_app
from serving.routing import AdapterRef
from tests.serving.conftest import BASE


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Registry:
    def __init__(self) -> None:
        self.current_version = "v1"

    def current(self, name: str) -> AdapterRef | None:
        return AdapterRef(f"{name}@{self.current_version}", f"/adapters/{name}/{self.current_version}")

    def lookup(self, name: str, version: str) -> AdapterRef:
        return AdapterRef(f"{name}@{version}", f"/adapters/{name}/{version}")


class Served:
    def __init__(self, upstream) -> None:  # type: ignore[no-untyped-def]
        self.upstream = upstream
        self.ids: set[str] = set()

    async def models(self):  # type: ignore[no-untyped-def]
        return [{"id": model_id} for model_id in sorted(self.ids)]

    async def load_adapter(self, served_name: str, path: str) -> None:
        self.ids.add(served_name)
        await self.upstream.load_adapter(served_name, path)


def test_retarget_only_touches_routes_on_that_adapter(routes):
    moved = retarget(routes, "demo", AdapterRef("demo@v2", "/a/v2"))
    assert moved["demo"].upstream_model == "demo@v2" and moved["demo+rag"].adapter.served_name == "demo@v2"
    assert moved["base"] is routes["base"] and routes["demo"].upstream_model == "demo@v1"


@pytest.mark.anyio
async def test_promotion_is_followed_without_restart_and_vllm_is_reconciled(routes, upstream, searcher):
    registry = Registry()
    app = build_app(routes, upstream, searcher, base_model=BASE, adapter_version=registry.lookup)
    chat = app.state.chat
    served = Served(upstream)
    follower = AdapterFollower(chat, served, registry.current)
    assert await follower.follow_aliases() == []  # nothing promoted yet

    registry.current_version = "v2"  # `lorag adapters promote demo v2` in another process
    assert await follower.follow_aliases() == ["demo@v2"]
    assert upstream.loaded == [("demo@v2", "/adapters/demo/v2")]  # loaded before the routes switched
    client = TestClient(app)
    reply = client.post(
        "/v1/chat/completions", json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert reply.json()["lorag"]["adapter"] == "demo@v2" and upstream.bodies[-1]["model"] == "demo@v2"

    # vLLM lost everything (restarted elsewhere): both versions this gateway used are loaded again.
    served.ids.clear()
    assert sorted(await follower.reconcile()) == ["demo@v1", "demo@v2"]
    assert await follower.reconcile() == []

    registry.current_version = "v1"  # rollback
    assert await follower.follow_aliases() == ["demo@v1"]
    assert chat.routes["demo+rag"].upstream_model == "demo@v1"
