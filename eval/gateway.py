"""A gateway for an evaluation to talk to: the one at `--url`, or a `lorag serve` the run starts and stops.

Datasets that bring their own passages (HotpotQA, PubMedQA, SQuAD) are evaluated in a home of their own
(`<home>/eval-homes/<name>/`): the passages become a JSONL corpus, indexed once (refreshed, so a rerun
embeds nothing), with the demo adapter registered so that every default route can answer.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.processes import free_port, start_lorag, stop_process, wait_healthy
from core.settings import Settings
from eval.datasets import Passage

CORPUS_FILE = "passages.jsonl"
"""Source ids of passages are `passages.jsonl#<passage id>`; metrics match gold ids on the part after `#`."""


def dataset_home_dir(settings: Settings, name: str) -> Path:
    """Where the home of dataset `name` (its passages' index) lives."""
    return settings.home / "eval-homes" / name


def dataset_home(settings: Settings, name: str, passages: list[Passage]) -> Path:
    """A lorag home with `passages` indexed and the demo adapter registered (idempotent)."""
    from retrieval.build import refresh
    from training.demo_adapter import register_demo_adapter

    home = dataset_home_dir(settings, name)
    corpus = home / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(passage.to_record(), ensure_ascii=False) + "\n" for passage in passages)
    target = corpus / CORPUS_FILE
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    local = settings.model_copy(update={"home": home, "corpus_dir": corpus})
    refresh(local)
    register_demo_adapter(local.adapters_dir, local.cache_dir)
    return home


@contextmanager
def managed_gateway(
    home: Path, log_path: Path, timeout_s: float = 900, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`lorag serve` on free ports with `home` (and this process's LORAG_* settings, plus `env`); yields
    its URL."""
    port, vllm_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    env = dict(
        os.environ, **(env or {}), LORAG_HOME=str(home), LORAG_PORT=str(port), LORAG_VLLM__PORT=str(vllm_port)
    )
    process = start_lorag(["serve"], log_path, env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log_path, timeout_s)
        yield url
    finally:
        stop_process(process, grace_s=60, sig=signal.SIGTERM)
