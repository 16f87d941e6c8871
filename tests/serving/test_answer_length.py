"""Answer length: the route's default when a request sets none, its cap when a request asks for more."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from core.settings import RouteConfig
from serving.answer_length import AnswerLength, answer_limit, limited
from serving.app import GatewayParts, build_app
from serving.chat import Budget
from serving.routing import build_routes
from tests.serving.fakes import BASE, WordCounter

LENGTH = AnswerLength(default=64, cap=256)


def test_no_length_in_the_request_gets_the_default_as_max_tokens():
    limit = answer_limit({}, LENGTH)
    assert limit.tokens == 64 and not limit.capped and limit.report() == {"max_tokens": 64}
    assert limited({"model": "m"}, limit) == {"model": "m", "max_tokens": 64}


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_a_length_within_the_cap_is_kept(field):  # type: ignore[no-untyped-def]
    limit = answer_limit({field: 100}, LENGTH)
    assert limit.tokens == 100 and not limit.capped and limited({field: 100}, limit) == {field: 100}


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_a_length_over_the_cap_is_clamped_and_reported(field):  # type: ignore[no-untyped-def]
    limit = answer_limit({field: 5000}, LENGTH)
    assert limit.tokens == 256 and limit.capped
    assert limit.report() == {"max_tokens": 256, "max_tokens_capped": {"requested": 5000, "cap": 256}}
    assert limited({field: 5000}, limit) == {field: 256}


def test_max_completion_tokens_decides_when_both_are_sent():
    body = {"max_tokens": 10, "max_completion_tokens": 300}
    limit = answer_limit(body, LENGTH)
    assert limit.requested == 300 and limit.tokens == 256
    assert limited(body, limit) == {"max_tokens": 256, "max_completion_tokens": 256}


def test_the_default_must_not_exceed_the_cap():
    with pytest.raises(ValueError, match="must be 1..cap"):
        AnswerLength(default=512, cap=256)


# --- through the gateway ---------------------------------------------------------------------------------


@pytest.fixture
def limited_routes():  # type: ignore[no-untyped-def]
    configs = {
        "short": RouteConfig(default_max_tokens=8, max_tokens_cap=16),
        "plain": RouteConfig(),
        "short+rag": RouteConfig(retrieval="always", k=2, default_max_tokens=40),
    }
    return build_routes(configs, BASE, {}, AnswerLength(default=32, cap=64))


def ask(client: TestClient, **body):  # type: ignore[no-untyped-def]
    body.setdefault("messages", [{"role": "user", "content": "How much is the Driftglass 3?"}])
    return client.post("/v1/chat/completions", json=body)


def test_each_route_sends_its_default_and_clamps_to_its_cap(limited_routes, upstream, searcher):
    client = TestClient(build_app(GatewayParts(limited_routes, upstream, BASE, searcher)))
    assert ask(client, model="short").json()["lorag"]["max_tokens"] == 8
    assert ask(client, model="plain").json()["lorag"]["max_tokens"] == 32  # the global default
    assert [body["max_tokens"] for body in upstream.bodies] == [8, 32]
    capped = ask(client, model="short", max_completion_tokens=1000).json()["lorag"]
    assert capped["max_tokens"] == 16 and capped["max_tokens_capped"] == {"requested": 1000, "cap": 16}
    assert upstream.bodies[-1]["max_completion_tokens"] == 16 and "max_tokens" not in upstream.bodies[-1]
    within = ask(client, model="plain", max_tokens=64).json()["lorag"]
    assert within["max_tokens"] == 64 and "max_tokens_capped" not in within


def test_the_streamed_finish_chunk_says_it_was_capped(limited_routes, upstream, searcher):
    client = TestClient(build_app(GatewayParts(limited_routes, upstream, BASE, searcher)))
    body = {"model": "short", "stream": True, "max_tokens": 99, "stream_options": {"include_usage": True}}
    response = ask(client, **body)
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    finish = [event for event in events if event["choices"] and event["choices"][0].get("finish_reason")]
    assert finish[0]["lorag"]["max_tokens_capped"] == {"requested": 99, "cap": 16}
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] > 0
    assert upstream.bodies[-1]["max_tokens"] == 16


def test_models_show_each_routes_limits(limited_routes, upstream, searcher):
    client = TestClient(build_app(GatewayParts(limited_routes, upstream, BASE, searcher)))
    cards = {card["id"]: card["lorag"] for card in client.get("/v1/models").json()["data"]}
    assert (cards["short"]["default_max_tokens"], cards["short"]["max_tokens_cap"]) == (8, 16)
    assert (cards["plain"]["default_max_tokens"], cards["plain"]["max_tokens_cap"]) == (32, 64)


def test_the_context_budget_keeps_the_routes_default_free(limited_routes, upstream, searcher):
    client = TestClient(
        build_app(GatewayParts(limited_routes, upstream, BASE, searcher, budget=Budget(WordCounter(), 60)))
    )
    roomy = ask(client, model="short+rag", max_tokens=5).json()["lorag"]
    tight = ask(client, model="short+rag").json()["lorag"]  # the route's default, 40, is kept free
    assert roomy["trimmed"] == 0 and tight["trimmed"] > 0 and tight["max_tokens"] == 40
