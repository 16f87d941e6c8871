"""Answer length with the real gateway, the real vLLM and the official openai client: a request without
`max_tokens` (as stock clients send it) stops at its route's default, and one over the cap is clamped and
flagged; `finish_reason` and `usage` are vLLM's own."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import openai
import pytest

from core.processes import free_port, stop_process, wait_healthy
from tests.e2e.stack import LORAG, REPORT, lorag_env

pytestmark = pytest.mark.e2e

QUESTION = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]
ENDLESS = {"ignore_eos": True}  # a vLLM extra: the answer runs until a limit stops it
CONFIG = """
default_max_tokens: 12
max_tokens_cap: 20
routes:
  base: {}
  short: {default_max_tokens: 6, max_tokens_cap: 9}
"""


@pytest.fixture(scope="module")
def limited(gateway, tmp_path_factory) -> Iterator[openai.OpenAI]:  # type: ignore[no-untyped-def]
    """A second gateway with small limits, on the session gateway's vLLM."""
    folder = tmp_path_factory.mktemp("answer-length")
    (folder / "lorag.yaml").write_text(CONFIG)
    port = free_port("127.0.0.1")
    log = folder / "gateway.log"
    env = lorag_env(gateway.home, LORAG_PORT=str(port), LORAG_CONFIG=str(folder / "lorag.yaml"))
    args = ["--vllm-url", gateway.vllm_url, "--vllm-api-key", gateway.vllm_api_key]
    with log.open("wb") as out:
        process = subprocess.Popen([LORAG, "serve", *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log, 600)
        yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=120)
    finally:
        stop_process(process, grace_s=60)


def test_without_max_tokens_the_route_default_ends_the_answer(limited):  # type: ignore[no-untyped-def]
    for route, default in (("base", 12), ("short", 6)):
        reply = limited.chat.completions.create(model=route, messages=QUESTION, extra_body=ENDLESS)
        assert reply.choices[0].finish_reason == "length"
        assert reply.usage.completion_tokens == default
        assert reply.model_extra["lorag"]["max_tokens"] == default
        assert "max_tokens_capped" not in reply.model_extra["lorag"]
    natural = limited.chat.completions.create(model="base", messages=[{"role": "user", "content": "Hi"}])
    assert natural.usage.completion_tokens <= 12  # a plain request: at most the default
    assert natural.choices[0].finish_reason != "length" or natural.usage.completion_tokens == 12
    REPORT["answer length: no max_tokens, default 12"] = f"{natural.usage.completion_tokens} tokens"


def test_a_request_over_the_cap_is_clamped_and_flagged(limited):  # type: ignore[no-untyped-def]
    reply = limited.chat.completions.create(
        model="short", messages=QUESTION, max_tokens=500, extra_body=ENDLESS
    )
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 9
    assert reply.model_extra["lorag"]["max_tokens_capped"] == {"requested": 500, "cap": 9}
    within = limited.chat.completions.create(
        model="base", messages=QUESTION, max_tokens=15, extra_body=ENDLESS
    )
    assert within.usage.completion_tokens == 15 and "max_tokens_capped" not in within.model_extra["lorag"]


def test_a_capped_stream_flags_its_finish_chunk_and_reports_usage(limited):  # type: ignore[no-untyped-def]
    stream = limited.chat.completions.create(
        model="base",
        messages=QUESTION,
        max_completion_tokens=999,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=ENDLESS,
    )
    chunks = list(stream)
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish[0].choices[0].finish_reason == "length"
    assert finish[0].model_extra["lorag"]["max_tokens_capped"] == {"requested": 999, "cap": 20}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 20


def test_models_list_each_routes_limits(limited):  # type: ignore[no-untyped-def]
    cards = {model.id: model.model_extra["lorag"] for model in limited.models.list()}
    assert (cards["base"]["default_max_tokens"], cards["base"]["max_tokens_cap"]) == (12, 20)
    assert (cards["short"]["default_max_tokens"], cards["short"]["max_tokens_cap"]) == (6, 9)
