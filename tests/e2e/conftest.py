"""End-to-end fixtures: one `lorag serve` (real vLLM, real index, real adapter) shared by the session.

Tests that must kill or restart a server start their own. Measured numbers are collected in `REPORT` and
printed in pytest's terminal summary, so `make test` shows them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import ADAPTER_KEEP_S, REPORT, Gateway, prepare_demo_home, running_gateway


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
    prepare_demo_home(home)
    REPORT["demo prepare (models cached)"] = f"{time.monotonic() - started:.1f} s"
    return home


@pytest.fixture(scope="session")
def gateway(lorag_home: Path, tmp_path_factory) -> Iterator[Gateway]:  # type: ignore[no-untyped-def]
    """`lorag serve` with its managed vLLM, on free ports; stopped (and vLLM with it) at the end."""
    started = time.monotonic()
    log = tmp_path_factory.mktemp("logs") / "gateway.log"
    # Old adapter versions leave vLLM quickly here, so that tests see it (and pinned requests re-load).
    with running_gateway(lorag_home, log, LORAG_ADAPTER_KEEP_S=str(ADAPTER_KEEP_S)) as running:
        REPORT["lorag serve start to healthy"] = f"{time.monotonic() - started:.1f} s"
        yield running


@pytest.fixture(scope="session")
def client(gateway: Gateway):  # type: ignore[no-untyped-def]
    from openai import OpenAI

    return OpenAI(base_url=f"{gateway.url}/v1", api_key="not-needed-on-loopback", max_retries=0, timeout=300)
