"""End-to-end fixtures: one `lorag serve` (real vLLM, real index, real adapter) shared by the session.

Tests that must kill or restart a server start their own. Measured numbers are collected in `REPORT` and
printed in pytest's terminal summary, so `make test` shows them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from serving.vllm_process import free_port, poll_health

REPORT: dict[str, str] = {}
LORAG = str(Path(sys.executable).parent / "lorag")
START_TIMEOUT_S = 900


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if REPORT:
        terminalreporter.section("lorag end-to-end measurements")
        for key, value in REPORT.items():
            terminalreporter.write_line(f"{key}: {value}")


def lorag_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, LORAG_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass
class Gateway:
    url: str
    vllm_url: str
    vllm_api_key: str
    home: Path
    process: subprocess.Popen[bytes]
    log: Path


def wait_for_health(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    outcome = poll_health(url, process, timeout_s)
    if outcome != "healthy":
        raise RuntimeError(f"server {outcome} ({process.returncode}):\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
        wait_for_health(url, process, log, START_TIMEOUT_S)
        REPORT["lorag serve start to healthy"] = f"{time.monotonic() - started:.1f} s"
        yield Gateway(url, f"http://127.0.0.1:{vllm_port}", key, lorag_home, process, log)
    finally:
        stop(process)
        shutil.copy(log, lorag_home / "gateway.log")


@pytest.fixture(scope="session")
def client(gateway: Gateway):  # type: ignore[no-untyped-def]
    from openai import OpenAI

    return OpenAI(base_url=f"{gateway.url}/v1", api_key="not-needed-on-loopback", max_retries=0, timeout=300)
