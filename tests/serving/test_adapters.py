"""The adapter pool: versions loaded once, loaded again when vLLM lost them, idle old ones unloaded."""

from __future__ import annotations

import asyncio

import pytest

from serving.adapters import AdapterPool
from serving.errors import NotFoundError
from tests.serving.fakes import FakeUpstream, served

V1, V2 = served("demo@v1", "/a/demo/v1"), served("demo@v2", "/a/demo/v2")


def lookup(name: str, version: str):  # type: ignore[no-untyped-def]
    return {("demo", "v1"): V1, ("demo", "v2"): V2}.get((name, version))


@pytest.mark.anyio
async def test_a_version_is_loaded_once_however_many_ask_at_once():
    upstream = FakeUpstream()
    pool = AdapterPool(upstream, lookup, [V1])
    results = await asyncio.gather(*(pool.version("demo", "v2") for _ in range(5)))
    assert results == [V2] * 5 and upstream.loaded == [("demo@v2", "/a/demo/v2")]
    assert await pool.version("demo", "v1") == V1 and upstream.loaded == [("demo@v2", "/a/demo/v2")]
    assert pool.names() == ["demo@v1", "demo@v2"]
    with pytest.raises(NotFoundError, match="no version 'v9'"):
        await pool.version("demo", "v9")


@pytest.mark.anyio
async def test_lost_versions_are_loaded_again_only_with_a_registry():
    upstream = FakeUpstream()
    assert await AdapterPool(upstream, lookup, [V1]).reload_lost(V1) is True
    assert upstream.loaded == [("demo@v1", "/a/demo/v1")]
    fixed = AdapterPool(upstream, None, [V1])
    assert not fixed.pinnable and await fixed.reload_lost(V1) is False


@pytest.mark.anyio
async def test_a_restarted_vllm_gets_every_version_back():
    upstream = FakeUpstream()
    pool = AdapterPool(upstream, lookup, [V1])
    await pool.version("demo", "v2")
    upstream.loaded.clear()
    await pool.reload_all()
    assert sorted(upstream.loaded) == [("demo@v1", "/a/demo/v1"), ("demo@v2", "/a/demo/v2")]


@pytest.mark.anyio
async def test_without_keep_s_nothing_is_ever_unloaded():
    upstream = FakeUpstream()
    pool = AdapterPool(upstream, lookup, [V1, V2], clock=lambda: 1e9)
    assert await pool.retire({"demo@v2"}) == [] and upstream.unloaded == []


@pytest.mark.anyio
async def test_idle_versions_no_route_serves_are_unloaded_after_keep_s():
    upstream, now = FakeUpstream(), [0.0]
    pool = AdapterPool(upstream, lookup, [V1, V2], keep_s=60, clock=lambda: now[0])
    assert await pool.retire({"demo@v2"}) == []  # v1's grace period starts now
    now[0] = 59
    pool.used(V1)  # a pinned request
    now[0] = 118
    assert await pool.retire({"demo@v2"}) == []
    now[0] = 119
    assert await pool.retire({"demo@v2"}) == ["demo@v1"]
    assert upstream.unloaded == ["demo@v1"] and pool.names() == ["demo@v2"]
