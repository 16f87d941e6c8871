from __future__ import annotations

import pytest

from core.settings import DEFAULT_RAG_K, RouteConfig, default_routes
from serving.errors import NotFoundError
from serving.routing import RouteConfigError, build_routes, select_route
from tests.serving.fakes import served


def test_routes_resolve_to_base_or_versioned_adapter():
    routes = build_routes(default_routes(), "Base", {"demo": served("demo@v3", "/a/demo/v3")})
    assert routes["base"].upstream_model == "Base" and routes["base"].adapter is None
    assert routes["demo"].upstream_model == "demo@v3" and routes["demo+rag"].retrieval == "always"
    assert routes["base+rag"].k == routes["demo+rag"].k == DEFAULT_RAG_K


def test_missing_adapter_is_a_clear_error():
    with pytest.raises(RouteConfigError, match="'kb'.*not registered"):
        build_routes({"kb": RouteConfig(adapter="kb")}, "Base", {})


def test_select_unknown_route_is_404():
    routes = build_routes({"base": RouteConfig()}, "Base", {})
    assert select_route(routes, "base").name == "base"
    with pytest.raises(NotFoundError) as info:
        select_route(routes, "nope")
    assert info.value.param == "model" and info.value.code == "model_not_found"


def test_search_options_follow_the_route_config():
    configs = {
        "plain": RouteConfig(retrieval="always"),
        "kb": RouteConfig(
            retrieval="always",
            search="hybrid",
            filters={"source_prefix": "policies/"},
            recency_half_life_days=30,
        ),
    }
    routes = build_routes(configs, "Base", {})
    assert routes["plain"].search == {}
    options = routes["kb"].search
    assert options["mode"] == "hybrid" and options["recency_half_life_days"] == 30
    assert callable(options["filters"])
    with pytest.raises(RouteConfigError, match="unknown filter keys"):
        build_routes({"bad": RouteConfig(filters={"colour": "red"})}, "Base", {})
