"""LangChain's standard chat-model tests need pytest-asyncio in auto mode with a session-scoped loop, which
clashes with the anyio tests of the rest of the suite: they run in a pytest invocation of their own
(`tests/phases.sh`, phase `langchain`), against one real gateway started here, or the one at
$LORAG_TEST_GATEWAY_URL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.stack import prepare_demo_home, running_gateway

GATEWAY_URL = "LORAG_TEST_GATEWAY_URL"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/langchain/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.langchain)


@pytest.fixture(scope="session")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running gateway with the demo routes: $LORAG_TEST_GATEWAY_URL, else `lorag serve` on a fresh
    demo home."""
    if os.environ.get(GATEWAY_URL):
        yield os.environ[GATEWAY_URL].rstrip("/")
        return
    home = tmp_path_factory.mktemp("langchain-home")
    prepare_demo_home(home)
    with running_gateway(home, tmp_path_factory.mktemp("logs") / "gateway.log") as gateway:
        yield gateway.url
