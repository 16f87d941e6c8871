"""Promotion, rollback and reconciliation against a running gateway and the real vLLM server."""

from __future__ import annotations

import time

import httpx
import pytest

from serving.adapters import served
from tests.e2e.stack import ADAPTER_KEEP_S, REPORT, lorag, shipped_fields

pytestmark = pytest.mark.e2e

QUESTION = [{"role": "user", "content": "Who founded Lumora Outfitters?"}]


def served_by(client, route: str) -> str:  # type: ignore[no-untyped-def]
    reply = client.chat.completions.create(model=route, messages=QUESTION, max_tokens=4, temperature=0)
    return str(reply.model_extra["lorag"]["adapter"])


def wait_for(predicate, timeout_s: float = 60) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout_s, "timed out"
        time.sleep(0.5)
    return time.monotonic() - started


def vllm_models(gateway) -> set[str]:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {gateway.vllm_api_key}"}
    return {card["id"] for card in httpx.get(f"{gateway.vllm_url}/v1/models", headers=headers).json()["data"]}


def test_promote_and_rollback_are_served_without_restart(gateway, client):  # type: ignore[no-untyped-def]
    from training.demo_adapter import DEMO_ADAPTER_DIR
    from training.registry import AdapterRegistry

    registry = AdapterRegistry(gateway.home / "adapters")
    before = registry.current("demo")
    assert before is not None and served_by(client, "demo") == before.served_name
    candidate = registry.register("demo", DEMO_ADAPTER_DIR, shipped_fields("e2e promotion"))
    # The gate scores the candidate and the current version through the gateway; same weights: passes.
    result = lorag(gateway, "adapters", "promote", "demo", candidate.version, "--url", gateway.url)
    assert f"{candidate.served_name} is current" in result.stdout, result.stdout
    took = wait_for(lambda: served_by(client, "demo") == candidate.served_name)
    REPORT["promotion picked up by the running gateway"] = f"{took:.1f} s after the alias moved"
    assert served_by(client, "demo+rag") == candidate.served_name
    assert served(candidate).upstream_name in vllm_models(gateway)  # vLLM knows it by its content hash too

    lorag(gateway, "adapters", "rollback", "demo")
    wait_for(lambda: served_by(client, "demo") == before.served_name)
    # No route serves the candidate now: it leaves vLLM once idle for adapter_keep_s...
    hashed = served(candidate).upstream_name
    took = wait_for(lambda: hashed not in vllm_models(gateway), timeout_s=90)
    REPORT["rolled-back version unloaded from vLLM"] = (
        f"{took:.1f} s after the rollback (keep {ADAPTER_KEEP_S} s)"
    )
    # ...and a request pinned to it loads it again.
    assert served_by(client, candidate.served_name) == candidate.served_name
    assert hashed in vllm_models(gateway)


def test_adapters_vllm_lost_are_loaded_again(gateway, client):  # type: ignore[no-untyped-def]
    from training.registry import AdapterRegistry

    current = AdapterRegistry(gateway.home / "adapters").current("demo")
    assert current is not None and served_by(client, "demo") == current.served_name
    name = served(current).upstream_name
    headers = {"Authorization": f"Bearer {gateway.vllm_api_key}"}
    response = httpx.post(
        f"{gateway.vllm_url}/v1/unload_lora_adapter", json={"lora_name": name}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert name not in vllm_models(gateway)
    wait_for(lambda: name in vllm_models(gateway))  # the gateway's reconciliation put it back
    assert served_by(client, "demo") == current.served_name
