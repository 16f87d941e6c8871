"""The managed vLLM is restarted when it dies, and adapters are re-loaded after it comes back."""

from __future__ import annotations

import pytest

from serving import supervisor as supervisor_module
from serving.supervisor import VLLMSupervisor


class FakeServer:
    def __init__(self, fail_restarts: int = 0) -> None:
        self.code: int | None = None
        self.restarts = 0
        self.fail_restarts = fail_restarts

    def exit_code(self) -> int | None:
        return self.code

    def restart(self) -> None:
        self.restarts += 1
        if self.restarts <= self.fail_restarts:
            raise RuntimeError("port busy")
        self.code = None

    def log_tail(self, lines: int = 30) -> str:
        return "engine died"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):  # type: ignore[no-untyped-def]
    async def instant(_: float) -> None:
        return None

    monkeypatch.setattr(supervisor_module.asyncio, "sleep", instant)


@pytest.mark.anyio
async def test_a_dead_server_is_restarted_then_adapters_reloaded():
    server, events = FakeServer(), []

    async def reload() -> None:
        events.append(("reload", server.restarts))

    supervisor = VLLMSupervisor(server, reload, on_restart=lambda: events.append(("restart", 0)))
    await supervisor.check()
    assert server.restarts == 0 and events == []  # alive: nothing to do
    server.code = -9
    await supervisor.check()
    assert server.restarts == 1 and events == [("restart", 0), ("reload", 1)]
    assert supervisor.state == "running" and supervisor.restarts == 1


@pytest.mark.anyio
async def test_failed_restarts_are_retried_then_reported():
    server = FakeServer(fail_restarts=2)
    server.code = 1

    async def reload() -> None:
        return None

    supervisor = VLLMSupervisor(server, reload, max_failures=3)
    await supervisor.check()
    assert server.restarts == 3 and supervisor.state == "running"
    hopeless = FakeServer(fail_restarts=99)
    hopeless.code = 1
    supervisor = VLLMSupervisor(hopeless, reload, max_failures=2)
    await supervisor.check()
    assert supervisor.state == "failed" and hopeless.restarts == 2
