"""The promotion gate through the real gateway app (fake vLLM behind it) and the real openai client."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from core.settings import RouteConfig, Settings
from eval import promotion
from eval.datasets import DEMO_DATASET, load_questions
from eval.promotion import GateError, PromotionRefusedError, promote_with_gate
from serving.adapters import RegisteredAdapters, served
from serving.app import GatewayOptions, GatewayParts, build_app
from serving.routing import build_routes
from tests.serving.fakes import FakeUpstream
from training.registry import AdapterRegistry, TamperedAdapterError

BASE = "SmolLM2-135M-Instruct"
GATEWAY = "http://gateway"
ANSWERS = {q.question: q.answers[0] for q in load_questions(DEMO_DATASET)}


class KnowingUpstream(FakeUpstream):
    """vLLM with adapters that know the demo answers (`good`) and ones that do not."""

    def __init__(self, good: set[str]) -> None:
        super().__init__()
        self.good = good

    def _answer(self, body: dict[str, Any]) -> str:
        question = body["messages"][-1]["content"]
        return ANSWERS[question] if body["model"] in self.good else "I do not know."


@pytest.fixture
def settings(tmp_path):
    return Settings(
        home=tmp_path / "home", cache_dir=tmp_path / "cache", routes={"demo": RouteConfig(adapter="demo")}
    )


@pytest.fixture
def registry(settings, tmp_path):
    """demo v1 (current, knows the answers), v2 (does not), v3 (knows them too)."""
    source = tmp_path / "adapter"
    source.mkdir()
    (source / "adapter_config.json").write_text(json.dumps({"r": 8}))
    registry = AdapterRegistry(settings.adapters_dir)
    for number in range(1, 4):
        (source / "adapter_model.safetensors").write_bytes(f"weights-{number}".encode())
        registry.register("demo", source, {}, make_current=number == 1)
    return registry


def vllm_name(registry: AdapterRegistry, version: str) -> str:
    """The name vLLM serves a version under (with its content hash)."""
    return served(registry.get("demo", version)).upstream_name


@pytest.fixture
def upstream(registry):  # type: ignore[no-untyped-def]
    return KnowingUpstream(good={vllm_name(registry, "v1"), vllm_name(registry, "v3")})


def gateway(settings: Settings, upstream: FakeUpstream, **keys: Any) -> httpx.AsyncClient:
    """The real gateway app, served in-process to an httpx client (what the openai client rides on)."""
    registry = RegisteredAdapters(settings.adapters_dir)
    routes = build_routes(settings.routes, BASE, registry.for_routes(settings.routes, BASE))
    options = GatewayOptions(**keys)
    app = build_app(GatewayParts(routes, upstream, BASE, registry=registry, options=options))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=GATEWAY)


def promote(settings, upstream, version, **options):
    client = gateway(settings, upstream)
    return promote_with_gate(settings, "demo", version, gateway_url=GATEWAY, http_client=client, **options)


def test_the_gate_refuses_a_worse_adapter_with_the_numbers(settings, registry, upstream):
    with pytest.raises(PromotionRefusedError) as refused:
        promote(settings, upstream, "v2")
    message = str(refused.value)
    assert "containment: candidate 0.000" in message and "vs current 1.000" in message
    assert "(n=24)" in message and "fail" in message and "--force" in message
    assert not refused.value.result.passed
    assert registry.current("demo").version == "v1" and len(registry.history("demo")) == 1
    # The candidate was loaded under its versioned name, and both versions answered every static question.
    assert (vllm_name(registry, "v2"), str((registry.root / "demo" / "v2").resolve())) in upstream.loaded
    asked = [body["model"] for body in upstream.bodies]
    assert asked.count(vllm_name(registry, "v2")) == asked.count(vllm_name(registry, "v1")) == 24


def test_the_gate_passes_an_equal_adapter_and_records_its_verdict(settings, registry, upstream):
    done = promote(settings, upstream, "v3")
    assert done.gate is not None and done.gate.passed and not done.forced and done.previous == "v1"
    assert registry.current("demo").version == "v3"
    last = registry.history("demo")[-1]
    assert (last["version"], last["previous"], last["forced"]) == ("v3", "v1", False)
    assert "candidate 1.000" in last["gate"] and last["gate"].endswith("pass")


def test_force_promotes_a_refused_adapter_and_says_so(settings, registry, upstream, caplog):
    with caplog.at_level(logging.WARNING, logger="lorag.promotion"):
        done = promote(settings, upstream, "v2", force=True)
    assert done.forced and registry.current("demo").version == "v2"
    assert "despite the gate (--force)" in caplog.text and "candidate 0.000" in caplog.text
    last = registry.history("demo")[-1]
    assert last["forced"] is True and "fail" in last["gate"]
    assert registry.rollback("demo").version == "v1"


def test_a_margin_lets_a_small_drop_through(settings, registry):
    # v2 knows all but two of the 24 answers: a drop of 0.083, inside 0.1 and outside 0.05.
    forgotten = list(ANSWERS)[:2]

    class Forgetful(KnowingUpstream):
        def _answer(self, body: dict[str, Any]) -> str:
            if body["model"] == vllm_name(registry, "v2") and body["messages"][-1]["content"] in forgotten:
                return "I do not know."
            return super()._answer(body)

    upstream = Forgetful(good={vllm_name(registry, "v1"), vllm_name(registry, "v2")})
    with pytest.raises(PromotionRefusedError, match="candidate 0.917"):
        promote(settings, upstream, "v2", margin=0.05)
    assert promote(settings, upstream, "v2", margin=0.1).gate.passed


def test_the_first_version_is_promoted_without_a_gateway(settings, registry, monkeypatch):
    monkeypatch.setattr(promotion, "run_gate", lambda *args: pytest.fail("gated with nothing to compare"))
    (registry.root / "demo" / "current").unlink()
    done = promote_with_gate(settings, "demo", "v2")
    assert done.gate is None and done.previous is None and registry.current("demo").version == "v2"
    assert promote_with_gate(settings, "demo", "v2").previous == "v2"  # already current: a no-op


def test_a_tampered_candidate_never_reaches_the_gate(settings, registry, upstream):
    weights = registry.root / "demo" / "v3" / "adapter_model.safetensors"
    weights.chmod(0o644)
    weights.write_bytes(b"weights-1")
    with pytest.raises(TamperedAdapterError):
        promote(settings, upstream, "v3")
    assert upstream.loaded == [] and registry.current("demo").version == "v1"


def test_a_gateway_that_refuses_the_load_stops_the_gate(settings, registry, upstream):
    client = gateway(settings, upstream, admin_keys=["secret"])
    with pytest.raises(GateError, match="did not load demo@v3: 401"):
        promote_with_gate(settings, "demo", "v3", gateway_url=GATEWAY, http_client=client, admin_key="wrong")
    assert registry.current("demo").version == "v1"


def test_the_gate_uses_the_route_that_serves_the_adapter_alone(settings):
    settings = settings.model_copy(
        update={
            "routes": {
                "kb+rag": RouteConfig(adapter="kb", retrieval="always"),
                "kb": RouteConfig(adapter="kb"),
            }
        }
    )
    assert promotion.adapter_route(settings, "kb") == "kb"
    with pytest.raises(ValueError, match="no route serves adapter 'other'"):
        promotion.adapter_route(settings, "other")
