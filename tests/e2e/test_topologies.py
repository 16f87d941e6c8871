"""Production topology and client-facing errors against the real servers."""

from __future__ import annotations

import subprocess

import openai
import pytest

from core.processes import free_port, stop_process, wait_healthy
from tests.e2e.stack import LORAG, lorag_env

pytestmark = pytest.mark.e2e


def test_gateway_on_an_external_vllm_never_imports_vllm(gateway, tmp_path):  # type: ignore[no-untyped-def]
    # A `vllm` package that cannot be imported: the gateway must still start and answer.
    poison = tmp_path / "poison" / "vllm"
    poison.mkdir(parents=True)
    marker = tmp_path / "vllm-was-imported"
    (poison / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nraise ImportError('the gateway must not import vllm')\n"
    )
    port = free_port("127.0.0.1")
    env = lorag_env(gateway.home, LORAG_PORT=str(port), PYTHONPATH=str(poison.parent))
    log = tmp_path / "external-gateway.log"
    command = [LORAG, "serve", "--vllm-url", gateway.vllm_url, "--vllm-api-key", gateway.vllm_api_key]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log, 300)
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=300
        )
        for route in ("base", "demo+rag"):
            reply = client.chat.completions.create(
                model=route,
                messages=[{"role": "user", "content": "What is the return window?"}],
                max_tokens=16,
            )
            assert reply.choices[0].message.content and reply.model == route
    finally:
        stop_process(process, grace_s=60)
    assert not marker.exists(), log.read_text()[-2000:]


def test_client_errors_are_openai_errors_not_500s(client):  # type: ignore[no-untyped-def]
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model", messages=messages)
    assert missing.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="base", messages=messages, temperature=7)
    assert bad.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="base", messages=[])
    assert empty.value.body["param"] == "messages"
    # A prompt too long for the model's context: vLLM's own 400 is passed on, not turned into a 500. (A
    # `max_tokens` beyond the context no longer reaches vLLM: the route's cap clamps it.)
    with pytest.raises(openai.BadRequestError):
        long = [{"role": "user", "content": "hi " * 5000}]
        client.chat.completions.create(model="base", messages=long, max_tokens=4)


def test_a_pinned_adapter_version_is_loaded_on_first_use(client, gateway):  # type: ignore[no-untyped-def]
    from training.demo_adapter import DEMO_ADAPTER_DIR
    from training.registry import AdapterRegistry

    # v2: the same weights registered again (not made current), so greedy answers must match v1's.
    pinned = AdapterRegistry(gateway.home / "adapters").register(
        "demo", DEMO_ADAPTER_DIR, {"note": "e2e pin"}
    )
    messages = [{"role": "user", "content": "Who founded Lumora Outfitters?"}]
    served = client.chat.completions.create(model="demo", messages=messages, temperature=0, max_tokens=24)
    reply = client.chat.completions.create(
        model=f"demo@{pinned.version}", messages=messages, temperature=0, max_tokens=24
    )
    assert reply.model == f"demo@{pinned.version}"
    assert reply.model_extra["lorag"]["adapter"] == pinned.served_name
    assert reply.choices[0].message.content == served.choices[0].message.content
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="demo@v99", messages=messages, max_tokens=4)
