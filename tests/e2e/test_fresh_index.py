"""Index refresh against the real stack: hot swaps under load, and a changed fact changes the answer.

These tests run a second gateway on the session's vLLM (`--vllm-url`) with its own home and a copy of
the demo corpus, so they can edit documents without touching the session gateway's index.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from core.processes import free_port, stop_process, wait_healthy
from core.settings import Settings
from retrieval.build import DEMO_CORPUS, refresh
from tests.e2e.stack import LORAG, REPORT, lorag_env

pytestmark = pytest.mark.e2e


@dataclass
class FreshGateway:
    url: str
    home: Path
    corpus: Path
    client: openai.OpenAI

    @property
    def settings(self) -> Settings:
        return Settings(home=self.home, corpus_dir=self.corpus)


@pytest.fixture(scope="module")
def fresh(gateway, tmp_path_factory) -> Iterator[FreshGateway]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("fresh")
    home, corpus = root / "home", root / "corpus"
    shutil.copytree(DEMO_CORPUS, corpus)
    port = free_port("127.0.0.1")
    env = lorag_env(home, LORAG_PORT=str(port), LORAG_CORPUS_DIR=str(corpus), LORAG_SNAPSHOT_POLL_S="0.2")
    subprocess.run([LORAG, "demo", "prepare"], env=env, check=True)
    log = root / "gateway.log"
    command = [LORAG, "serve", "--vllm-url", gateway.vllm_url, "--vllm-api-key", gateway.vllm_api_key]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log, 300)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=300)
        yield FreshGateway(url, home, corpus, client)
    finally:
        stop_process(process, grace_s=60)


def ask(client: openai.OpenAI, question: str, max_tokens: int = 48):  # type: ignore[no-untyped-def]
    return client.chat.completions.create(
        model="base+rag",
        messages=[{"role": "user", "content": question}],
        temperature=0,
        max_tokens=max_tokens,
    )


def wait_for_snapshot(client: openai.OpenAI, snapshot: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ask(client, "hello", max_tokens=1).model_extra["lorag"]["snapshot"] == snapshot:
            return
        time.sleep(0.2)
    raise TimeoutError(f"gateway did not switch to {snapshot}")


def test_a_changed_fact_changes_the_answer_without_retraining(fresh):  # type: ignore[no-untyped-def]
    question = "How much does the Driftglass 3 tent cost right now?"
    before = ask(fresh.client, question)
    assert "$319" in before.choices[0].message.content
    pricing = fresh.corpus / "pricing.md"
    pricing.write_text(pricing.read_text().replace("$319", "$349").replace("from $299 to", "from $319 to"))
    result = refresh(fresh.settings)
    wait_for_snapshot(fresh.client, result.snapshot_id)
    after = ask(fresh.client, question)
    REPORT["Driftglass 3 answer before / after refresh"] = (
        f"{before.choices[0].message.content!r} / {after.choices[0].message.content!r}"
    )
    assert "$349" in after.choices[0].message.content
    citation = after.model_extra["citations"][0]
    assert citation["snapshot"] == result.snapshot_id and citation["source"] == "pricing.md"


def test_swaps_under_concurrent_load_fail_no_request(fresh):  # type: ignore[no-untyped-def]
    questions = [
        "What is the return window?",
        "How much is the Tidewick headlamp?",
        "When does the Dunmere store close on Saturday?",
        "What is the customer support email?",
    ]
    responses, failures = [], []
    refreshed = threading.Event()

    def worker(offset: int) -> None:
        # Keep the load on until every refresh has landed, and for at least 200 requests in all.
        n = offset
        while not refreshed.is_set() or len(responses) + len(failures) < 200:
            try:
                responses.append(ask(fresh.client, questions[n % len(questions)], max_tokens=4))
            except Exception as exc:  # noqa: BLE001 - every failure is a test failure, reported below
                failures.append(repr(exc))
            n += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in workers:
        thread.start()
    swaps = []
    support = fresh.corpus / "support.md"
    try:
        for n in range(3):
            time.sleep(2)  # load on the current snapshot before each swap (and on the last one after)
            support.write_text(
                support.read_text() + f"\n## Notice {n}\n\nThe support desk notice number is {n}.\n"
            )
            swaps.append(refresh(fresh.settings).snapshot_id)
            wait_for_snapshot(fresh.client, swaps[-1])
        time.sleep(2)
    finally:
        refreshed.set()
        for thread in workers:
            thread.join(timeout=600)
    seen = {r.model_extra["lorag"]["snapshot"] for r in responses}
    REPORT["requests during 3 refreshes"] = (
        f"{len(responses)} ok, {len(failures)} failed, {len(seen)} snapshots served"
    )
    assert failures == []
    assert len(responses) >= 200 and set(swaps) <= seen
    for response in responses:
        for citation in response.model_extra["citations"]:
            assert resolves(fresh.home, citation), citation


def resolves(home: Path, citation: dict) -> bool:
    """The cited chunk, at the cited document revision, is in the snapshot the response names."""
    database = home / "index" / "snapshots" / citation["snapshot"] / "chunks.sqlite"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        row = connection.execute(
            "SELECT c.source_id, d.content_hash FROM chunks c JOIN documents d ON d.source_id = c.source_id"
            " WHERE c.chunk_id = ?",
            (citation["chunk_id"],),
        ).fetchone()
    return row is not None and tuple(row) == (citation["source"], citation["revision"])
