from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.settings import RouteConfig
from serving.app import GatewayParts, build_app
from serving.routing import build_routes
from tests.serving.fakes import BASE, FakeSearcher, FakeUpstream, served


@pytest.fixture
def upstream() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def searcher() -> FakeSearcher:
    return FakeSearcher()


@pytest.fixture
def routes():
    configs = {
        "base": RouteConfig(),
        "base+rag": RouteConfig(retrieval="always", k=3),
        "demo": RouteConfig(adapter="demo"),
        "demo+rag": RouteConfig(adapter="demo", retrieval="always", k=3),
    }
    return build_routes(configs, BASE, {"demo": served("demo@v1", "/adapters/demo/v1")})


@pytest.fixture
def client(routes, upstream, searcher) -> TestClient:
    return TestClient(build_app(GatewayParts(routes, upstream, BASE, searcher)))


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (`@pytest.mark.anyio`) run on asyncio, as uvicorn serves the gateway."""
    return "asyncio"
