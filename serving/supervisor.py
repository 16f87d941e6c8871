"""Keeps a managed vLLM alive: if the child dies, start it again and re-load every adapter in use.

Requests in flight when it dies fail with 503 (their upstream connection breaks); requests arriving while
it restarts get 503 with Retry-After from the connection refusal, and `/ready` says "restarting".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

log = logging.getLogger("lorag.supervisor")


class Restartable(Protocol):
    def exit_code(self) -> int | None: ...

    def restart(self) -> None: ...

    def log_tail(self, lines: int = 30) -> str: ...


class VLLMSupervisor:
    """Watches the managed server every `poll_s` seconds (the gateway's background task)."""

    def __init__(
        self,
        server: Restartable,
        reload_adapters: Callable[[], Awaitable[None]],
        on_restart: Callable[[], None] = lambda: None,
        poll_s: float = 2.0,
        max_failures: int = 5,
    ) -> None:
        self.server = server
        self.reload_adapters = reload_adapters
        self.on_restart = on_restart
        self.poll_s = poll_s
        self.max_failures = max_failures
        self.state: Literal["running", "restarting", "failed"] = "running"
        self.restarts = 0

    async def check(self) -> None:
        """One check: restart the server if it died (with backoff between failed attempts)."""
        code = self.server.exit_code()
        if code is None:
            return
        log.error("vLLM exited with status %s; restarting it. Log tail:\n%s", code, self.server.log_tail(10))
        self.state = "restarting"
        self.on_restart()
        for attempt in range(1, self.max_failures + 1):
            try:
                await asyncio.to_thread(self.server.restart)
                await self.reload_adapters()
            except Exception as exc:  # noqa: BLE001 - keep trying; the gateway answers 503 meanwhile
                log.error("vLLM restart attempt %d failed: %s", attempt, exc)
                await asyncio.sleep(min(60.0, 2.0**attempt))
                continue
            self.restarts += 1
            self.state = "running"
            log.info("vLLM restarted (restart %d) and adapters re-loaded", self.restarts)
            return
        self.state = "failed"
        log.critical(
            "vLLM could not be restarted after %d attempts; the gateway answers 503", self.max_failures
        )

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            if self.state != "failed":
                await self.check()
