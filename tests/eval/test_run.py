"""`eval run`'s client side with the real `openai` client against the gateway app (fake vLLM and index)."""

from __future__ import annotations

import httpx
import pytest
from openai import AsyncOpenAI

from core.settings import RouteConfig
from eval.datasets import Question
from eval.run import run_questions
from serving.app import GatewayParts, build_app
from serving.routing import build_routes
from tests.serving.fakes import BASE, FakeUpstream, ScoredSearcher, served


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def routes():  # type: ignore[no-untyped-def]
    configs = {
        "base": RouteConfig(),
        "base+rag": RouteConfig(retrieval="always", k=3),
        "demo": RouteConfig(adapter="demo"),
    }
    return build_routes(configs, BASE, {"demo": served("demo@v1", "/adapters/demo/v1")})


class FailingForDemo(FakeUpstream):
    async def stream_chat(self, body):  # type: ignore[no-untyped-def]
        if body["model"].startswith("demo"):
            raise RuntimeError("boom")
        async for chunk in super().stream_chat(body):
            yield chunk


@pytest.mark.anyio
async def test_records_carry_answer_mode_sources_tokens_and_errors(routes):
    app = build_app(GatewayParts(routes, FailingForDemo(), BASE, ScoredSearcher(0.8)))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw/v1")
    client = AsyncOpenAI(base_url="http://gw/v1", api_key="x", http_client=http, max_retries=0)
    questions = [Question("q1", "How much is the Driftglass 3?", ["$319"], "evolving", ["pricing.md"])]
    seen: list[int] = []
    records = await run_questions(
        client, questions, ["base+rag", "base", "demo"], max_tokens=8, progress=lambda d, t: seen.append(d)
    )
    rag, base, demo = records
    assert [r.route for r in records] == ["base+rag", "base", "demo"] and seen[-1] == 3
    assert rag.answer == "echo: How much is the Driftglass 3?" and rag.finish_reason == "stop"
    assert rag.mode == "rag" and rag.policy == "always" and rag.relevance == 0.8
    assert rag.retrieved_sources == ["pricing.md", "stock.md"]
    assert rag.retrieved_texts[0].startswith("The Driftglass 3")
    assert rag.prompt_tokens == 10 and rag.completion_tokens == 7 and rag.ttft_s is not None
    assert base.mode == "none" and base.citations == [] and base.error is None
    assert demo.error is not None and demo.answer == ""


@pytest.mark.anyio
async def test_policy_and_k_overrides_reach_the_gateway(routes):
    upstream = FakeUpstream()
    searcher = ScoredSearcher(0.1)
    app = build_app(GatewayParts(routes, upstream, BASE, searcher))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw/v1")
    client = AsyncOpenAI(base_url="http://gw/v1", api_key="x", http_client=http, max_retries=0)
    questions = [Question("q1", "hello there", ["x"], "static")]
    (record,) = await run_questions(client, questions, ["base"], max_tokens=4, retrieval="auto", k=2)
    assert record.policy == "auto" and record.mode == "none" and record.threshold == 0.4
    assert searcher.queries == [("hello there", 2)]
