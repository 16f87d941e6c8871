"""The gateway follows registry aliases (load first, then switch) and re-loads what vLLM lost."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.adapter_follow import AdapterFollower, serving_names
from serving.app import GatewayOptions, GatewayParts, build_app
from serving.errors import UpstreamError
from serving.routing import ServedAdapter, retarget
from tests.serving.fakes import BASE, FakeUpstream, served


class Registry:
    """Every version exists; `current_version` is the alias (moved by `lorag adapters promote`)."""

    def __init__(self) -> None:
        self.current_version = "v1"

    def current(self, name: str) -> ServedAdapter | None:
        return self.version(name, self.current_version)

    def version(self, name: str, version: str) -> ServedAdapter:
        return served(f"{name}@{version}", f"/adapters/{name}/{version}")

    def versions(self, name: str) -> list[str]:
        return ["v1", "v2"]


class Served(FakeUpstream):
    """vLLM's model list as a set of ids that a test can empty (vLLM restarted behind our back)."""

    def __init__(self, upstream: FakeUpstream) -> None:
        super().__init__()
        self.upstream = upstream
        self.ids: set[str] = set()

    async def models(self):  # type: ignore[no-untyped-def]
        return [{"id": model_id} for model_id in sorted(self.ids)]

    async def load_adapter(self, served_name: str, path: str) -> None:
        self.ids.add(served_name)
        await self.upstream.load_adapter(served_name, path)

    async def chat(self, body):  # type: ignore[no-untyped-def]
        return await self.upstream.chat(body)


def test_retarget_only_touches_routes_on_that_adapter(routes):
    moved = retarget(routes, "demo", served("demo@v2", "/a/v2"))
    assert moved["demo"].upstream_model == "demo@v2" and moved["demo+rag"].adapter.upstream_name == "demo@v2"
    assert moved["base"] is routes["base"] and routes["demo"].upstream_model == "demo@v1"


@pytest.mark.anyio
async def test_promotion_is_followed_without_restart_and_vllm_is_reconciled(routes, upstream, searcher):
    registry = Registry()
    app = build_app(GatewayParts(routes, Served(upstream), BASE, searcher, registry))
    chat, pool = app.state.chat, app.state.adapters
    served = pool.upstream
    follower = AdapterFollower(chat, pool, registry.current)
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
    assert sorted(await pool.reconcile()) == ["demo@v1", "demo@v2"]
    assert await pool.reconcile() == []

    registry.current_version = "v1"  # rollback
    assert await follower.follow_aliases() == ["demo@v1"]
    assert chat.routes["demo+rag"].upstream_model == "demo@v1"


class ForgetfulUpstream(FakeUpstream):
    """A vLLM that answers 404 for adapters it does not hold, and can unload them."""

    def __init__(self) -> None:
        super().__init__()
        self.held: set[str] = {"demo@v1"}

    async def load_adapter(self, served_name: str, path: str) -> None:
        self.held.add(served_name)
        await super().load_adapter(served_name, path)

    async def unload_adapter(self, served_name: str) -> None:
        self.held.discard(served_name)
        await super().unload_adapter(served_name)

    async def models(self):  # type: ignore[no-untyped-def]
        return [{"id": BASE}, *({"id": name} for name in sorted(self.held))]

    def _check(self, body):  # type: ignore[no-untyped-def]
        if "@" in body["model"] and body["model"] not in self.held:
            raise UpstreamError(404, f"The model `{body['model']}` does not exist.", "NotFoundError")

    async def chat(self, body):  # type: ignore[no-untyped-def]
        self._check(body)
        return await super().chat(body)

    async def stream_chat(self, body):  # type: ignore[no-untyped-def]
        self._check(body)
        async for chunk in super().stream_chat(body):
            yield chunk


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_old_versions_are_unloaded_after_idling_and_reloaded_when_pinned(routes, searcher, monkeypatch):
    registry, upstream, clock = Registry(), ForgetfulUpstream(), Clock()
    monkeypatch.setattr("serving.adapters.time.monotonic", clock)
    options = GatewayOptions(adapter_keep_s=600)
    app = build_app(GatewayParts(routes, upstream, BASE, searcher, registry, options=options))
    chat, pool = app.state.chat, app.state.adapters
    follower = AdapterFollower(chat, pool, registry.current)
    client = TestClient(app)

    async def retire() -> list[str]:
        return await pool.retire(serving_names(chat.routes))

    def ask(model: str, stream: bool = False):  # type: ignore[no-untyped-def]
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        return client.post("/v1/chat/completions", json=body)

    registry.current_version = "v2"
    await follower.follow_aliases()
    assert await retire() == []  # v1 just stopped being served: its grace period starts now
    clock.now += 500
    assert ask("demo@v1").status_code == 200  # a pinned request restarts v1's idle time
    clock.now += 500
    assert await retire() == []
    clock.now += 101
    assert await retire() == ["demo@v1"]
    assert upstream.unloaded == ["demo@v1"] and pool.names() == ["demo@v2"]
    assert await pool.reconcile() == []  # an unloaded old version is not "missing"
    clock.now += 10_000
    assert await retire() == []  # the served version is never unloaded

    reply = ask("demo@v1")  # pinned again later: loaded on demand
    assert reply.status_code == 200 and "demo@v1" in upstream.held and "demo@v1" in pool.names()


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_an_adapter_unloaded_behind_the_gateways_back_is_loaded_again(routes, searcher, stream):
    registry, upstream = Registry(), ForgetfulUpstream()
    app = build_app(GatewayParts(routes, upstream, BASE, searcher, registry))
    upstream.held.clear()  # e.g. another gateway sharing this vLLM unloaded it
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    reply = TestClient(app).post("/v1/chat/completions", json=body)
    assert reply.status_code == 200 and '"error"' not in reply.text and "hi" in reply.text
    assert upstream.loaded == [("demo@v1", "/adapters/demo/v1")] and "demo@v1" in upstream.held


@pytest.mark.anyio
async def test_a_base_model_404_is_not_retried(routes, searcher):
    class Missing(ForgetfulUpstream):
        async def chat(self, body):  # type: ignore[no-untyped-def]
            self.bodies.append(body)
            raise UpstreamError(404, "The model `x` does not exist.", "NotFoundError")

    upstream = Missing()
    app = build_app(GatewayParts(routes, upstream, BASE, searcher, Registry()))
    reply = TestClient(app).post(
        "/v1/chat/completions", json={"model": "base", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert reply.status_code == 404 and len(upstream.bodies) == 1 and upstream.loaded == []
