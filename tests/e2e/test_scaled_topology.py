"""The scaled topology on one machine: two vLLM replicas, two gateways on different ports, an index refresh
in a third process and an adapter promotion — both gateways serve the new snapshot and both replicas the
new adapter version, without restarts and with no failed request during the switch.

Replica A is the session's vLLM; replica B is started here (with a small KV cache). Each gateway generates
through its own replica (standing in for the Service) and loads adapters into both (`vllm_replicas`).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from core.models import resolve_model
from core.processes import free_port, stop_process, wait_healthy
from core.settings import Settings, VLLMSettings
from core.vllm_server import ManagedVLLM
from retrieval.build import DEMO_CORPUS
from serving.adapters import served
from tests.e2e.stack import LORAG, REPORT, lorag_env, shipped_fields

pytestmark = pytest.mark.e2e

QUESTION = [{"role": "user", "content": "What is the return window?"}]


def served_models(url: str, key: str) -> set[str]:
    response = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return {card["id"] for card in response.json()["data"]}


def test_two_replicas_two_gateways_refresh_and_promotion(gateway, tmp_path):  # type: ignore[no-untyped-def]
    settings = Settings()
    config = VLLMSettings(port=free_port("127.0.0.1"), kv_cache_gib=1)
    replica_b = ManagedVLLM(
        resolve_model(settings.chat_model, settings.cache_dir),
        settings.chat_model,
        config,
        tmp_path / "vllm-b.log",
        gateway.vllm_api_key,  # one key for the whole replica set, as a Kubernetes Secret would give
    )
    replica_b.start()
    home, corpus = tmp_path / "home", tmp_path / "corpus"
    shutil.copytree(DEMO_CORPUS, corpus)
    replicas = f"{gateway.vllm_url},{replica_b.url}"
    shared = {"LORAG_CORPUS_DIR": str(corpus), "LORAG_SNAPSHOT_POLL_S": "0.5", "LORAG_ADAPTER_POLL_S": "1"}
    subprocess.run([LORAG, "demo", "prepare"], env=lorag_env(home, **shared), check=True, capture_output=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        replica_b.wait_healthy()
        urls = []
        for name, vllm_url in (("g1", gateway.vllm_url), ("g2", replica_b.url)):
            port = free_port("127.0.0.1")
            env = lorag_env(
                home,
                **shared,
                LORAG_PORT=str(port),
                LORAG_VLLM_URL=vllm_url,
                LORAG_VLLM_API_KEY=gateway.vllm_api_key,
                LORAG_VLLM_REPLICAS=replicas,
            )
            log = tmp_path / f"{name}.log"
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen([LORAG, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
                )
            urls.append(f"http://127.0.0.1:{port}")
            wait_healthy(urls[-1], processes[-1], log, 300)
        clients = [
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120) for url in urls
        ]
        seen: list[tuple[str, str]] = []
        failures: list[str] = []
        done = threading.Event()

        def load() -> None:
            turn = 0
            while not done.is_set():
                client = clients[turn % 2]
                turn += 1
                try:
                    reply = client.chat.completions.create(model="demo+rag", messages=QUESTION, max_tokens=8)
                    extension = reply.model_extra["lorag"]
                    seen.append((extension["snapshot"], extension["adapter"]))
                except Exception as exc:  # noqa: BLE001 - every failure is the test's business
                    failures.append(repr(exc))

        worker = threading.Thread(target=load)
        worker.start()
        try:
            time.sleep(2)
            # A refresh in a third process: both gateways pick up the new snapshot.
            returns = corpus / "policies" / "returns.md"
            returns.write_text(returns.read_text().replace("45 days", "60 days"))
            subprocess.run(
                [LORAG, "index", "refresh"], env=lorag_env(home, **shared), check=True, capture_output=True
            )
            # A promotion through the first gateway: the candidate is loaded into both replicas.
            from training.demo_adapter import DEMO_ADAPTER_DIR
            from training.registry import AdapterRegistry

            fields = shipped_fields("scaled topology")
            candidate = AdapterRegistry(home / "adapters").register("demo", DEMO_ADAPTER_DIR, fields)
            subprocess.run(
                [LORAG, "adapters", "promote", "demo", candidate.version, "--url", urls[0], "--force"],
                env=lorag_env(home, **shared),
                check=True,
                capture_output=True,
            )
            started = time.monotonic()
            snapshot = Path(home / "index" / "current").resolve().name
            while time.monotonic() - started < 60:
                latest = {
                    url: c.chat.completions.create(
                        model="demo+rag", messages=QUESTION, max_tokens=4
                    ).model_extra["lorag"]
                    for url, c in zip(urls, clients, strict=True)
                }
                if all(
                    e["snapshot"] == snapshot and e["adapter"] == candidate.served_name
                    for e in latest.values()
                ):
                    break
                time.sleep(0.5)
            REPORT["scaled topology: both gateways on new snapshot + adapter"] = (
                f"{time.monotonic() - started:.1f} s"
            )
        finally:
            done.set()
            worker.join(120)
        assert all(
            e["snapshot"] == snapshot and e["adapter"] == candidate.served_name for e in latest.values()
        ), latest
        for replica in (gateway.vllm_url, replica_b.url):
            assert served(candidate).upstream_name in served_models(replica, gateway.vllm_api_key), replica
        assert failures == [], failures[:3]
        assert len(seen) >= 4
        REPORT["scaled topology: requests during the switch"] = f"{len(seen)}, failed {len(failures)}"
    finally:
        for process in processes:
            stop_process(process, grace_s=60)
        replica_b.stop()
