"""Resilience against the real servers: client disconnects, vLLM death and restart, draining on shutdown,
and keys over real HTTP."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import threading
import time

import httpx
import openai
import pytest

from core.processes import free_port, stop_process, wait_healthy
from tests.e2e.stack import LORAG, REPORT, lorag_env

pytestmark = pytest.mark.e2e

QUESTION = [{"role": "user", "content": "What is the return window?"}]


def vllm_running(gateway) -> float:  # type: ignore[no-untyped-def]
    """Requests vLLM is generating for now (its Prometheus gauge)."""
    text = httpx.get(f"{gateway.vllm_url}/metrics", timeout=10).text
    values = re.findall(r"^vllm:num_requests_running\{[^}]*\} ([0-9.]+)$", text, re.MULTILINE)
    return sum(float(value) for value in values)


def test_client_disconnect_aborts_generation_in_vllm(gateway):  # type: ignore[no-untyped-def]
    body = {
        "model": "base",
        "messages": QUESTION,
        "stream": True,
        "max_tokens": 3000,
        "ignore_eos": True,  # a vLLM extra, passed on: the stream would run for minutes
    }
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=60) as response:
        lines = response.iter_lines()
        for line in lines:  # until the first generated token has arrived
            if '"content"' in line:
                break
        # The gauge is set from engine-step statistics, which can trail the first token: poll, don't sample.
        deadline = time.monotonic() + 15
        while vllm_running(gateway) < 1 and time.monotonic() < deadline:
            next(lines)
            time.sleep(0.2)
        assert vllm_running(gateway) >= 1
    # The client is gone: vLLM must stop generating for it within seconds, not after 3000 tokens.
    deadline = time.monotonic() + 20
    while vllm_running(gateway) > 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert vllm_running(gateway) == 0


def start_gateway(home, tmp_path, name: str, *args: str, **env: str):  # type: ignore[no-untyped-def]
    port = free_port("127.0.0.1")
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [LORAG, "serve", *args],
            env=lorag_env(home, LORAG_PORT=str(port), **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log, 600)
    return url, process, log


def test_dead_vllm_is_restarted_and_adapters_reloaded(gateway, tmp_path):  # type: ignore[no-untyped-def]
    vllm_port = str(free_port("127.0.0.1"))
    url, process, log = start_gateway(gateway.home, tmp_path, "restart", LORAG_VLLM__PORT=vllm_port)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
    try:
        before = client.chat.completions.create(model="demo", messages=QUESTION, temperature=0, max_tokens=12)
        pid = httpx.get(f"{url}/admin/status").json()["vllm"]["pid"]
        os.killpg(pid, signal.SIGKILL)  # the whole server: API process and engine
        killed = time.monotonic()
        with pytest.raises(openai.APIStatusError) as during:
            client.chat.completions.create(model="demo", messages=QUESTION, max_tokens=4)
        assert during.value.status_code == 503
        assert during.value.response.headers.get("retry-after")
        while httpx.get(f"{url}/ready").status_code != 200:
            assert time.monotonic() - killed < 600, log.read_text()[-3000:]
            time.sleep(1)
        REPORT["managed vLLM killed to serving again"] = f"{time.monotonic() - killed:.1f} s"
        after = client.chat.completions.create(model="demo", messages=QUESTION, temperature=0, max_tokens=12)
        # The adapter was re-loaded under the same versioned name: same greedy answer as before.
        assert after.model_extra["lorag"]["adapter"] == "demo@v1"
        assert after.choices[0].message.content == before.choices[0].message.content
        status = httpx.get(f"{url}/admin/status").json()["vllm"]
        assert status["restarts"] == 1 and status["pid"] != pid
        assert "lorag_vllm_restarts_total 1.0" in httpx.get(f"{url}/metrics").text
    finally:
        stop_process(process, grace_s=60)


def test_keys_over_http_and_draining_on_shutdown(gateway, tmp_path):  # type: ignore[no-untyped-def]
    key, admin_key = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    url, process, log = start_gateway(
        gateway.home,
        tmp_path,
        "keys",
        "--vllm-url",
        gateway.vllm_url,
        "--vllm-api-key",
        gateway.vllm_api_key,
        LORAG_API_KEYS=f'[{{"key": "{key}", "routes": ["base"]}}]',
        LORAG_ADMIN_KEYS=f'["{admin_key}"]',
    )
    try:
        user = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
        with pytest.raises(openai.PermissionDeniedError):
            user.chat.completions.create(model="demo", messages=QUESTION, max_tokens=4)
        assert [model.id for model in user.models.list()] == ["base"]
        assert httpx.get(f"{url}/admin/status", headers={"Authorization": f"Bearer {key}"}).status_code == 403
        admin = httpx.get(f"{url}/admin/status", headers={"Authorization": f"Bearer {admin_key}"})
        assert admin.status_code == 200 and admin.json()["vllm"]["state"] == "external"

        # Drain: a stream running when the gateway is told to stop still completes.
        outcome: dict[str, object] = {}
        started = threading.Event()

        def consume() -> None:
            stream = user.chat.completions.create(
                model="base", messages=QUESTION, max_tokens=48, stream=True, extra_body={"ignore_eos": True}
            )
            pieces = []
            for chunk in stream:
                started.set()
                if chunk.choices:
                    pieces.append(chunk.choices[0].delta.content or "")
                    outcome["finish"] = chunk.choices[0].finish_reason or outcome.get("finish")
            outcome["pieces"] = len(pieces)

        reader = threading.Thread(target=consume)
        reader.start()
        assert started.wait(60)
        process.send_signal(signal.SIGTERM)
        reader.join(120)
        assert outcome.get("finish") == "length" and outcome.get("pieces", 0) >= 24, outcome
        assert process.wait(60) == 0, log.read_text()[-2000:]
    finally:
        stop_process(process, grace_s=60)
