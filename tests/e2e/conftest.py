"""End-to-end fixtures: one `lorag serve` (real vLLM, real index, real adapter) shared by the session.

Tests that must kill or restart a server start their own. Measured numbers are collected in `REPORT` and
printed in pytest's terminal summary, so `make test` shows them.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.processes import free_port, stop_process, wait_healthy
from tests.e2e.stack import LORAG, REPORT, START_TIMEOUT_S, Gateway, lorag_env


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if REPORT:
        terminalreporter.section("lorag end-to-end measurements")
        for key, value in REPORT.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture(scope="session")
def lorag_home(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A fresh lorag home with the demo index built and the shipped demo adapter registered."""
    home = tmp_path_factory.mktemp("lorag-home")
    started = time.monotonic()
    subprocess.run([LORAG, "demo", "prepare"], env=lorag_env(home), check=True)
    REPORT["demo prepare (models cached)"] = f"{time.monotonic() - started:.1f} s"
    return home


@pytest.fixture(scope="session")
def gateway(lorag_home: Path, tmp_path_factory) -> Iterator[Gateway]:  # type: ignore[no-untyped-def]
    """`lorag serve` with its managed vLLM, on free ports; stopped (and vLLM with it) at the end."""
    port, vllm_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    key = secrets.token_urlsafe(16)
    log = tmp_path_factory.mktemp("logs") / "gateway.log"
    env = lorag_env(
        lorag_home,
        LORAG_PORT=str(port),
        LORAG_VLLM__PORT=str(vllm_port),
        LORAG_VLLM_API_KEY=key,
    )
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen([LORAG, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log, START_TIMEOUT_S)
        REPORT["lorag serve start to healthy"] = f"{time.monotonic() - started:.1f} s"
        yield Gateway(url, f"http://127.0.0.1:{vllm_port}", key, lorag_home, process, log)
    finally:
        stop_process(process, grace_s=60)
        shutil.copy(log, lorag_home / "gateway.log")


@pytest.fixture(scope="session")
def client(gateway: Gateway):  # type: ignore[no-untyped-def]
    from openai import OpenAI

    return OpenAI(base_url=f"{gateway.url}/v1", api_key="not-needed-on-loopback", max_retries=0, timeout=300)
