"""A bounded queue in front of vLLM: at most `max_in_flight` requests upstream, `max_queue` waiting, and
429 with Retry-After beyond that, so an overload is refused early instead of timing out everyone."""

from __future__ import annotations

import asyncio
import math
import time

from serving.errors import RateLimitError


class Admission:
    """Slots for upstream requests. `enter()` waits for one (or refuses); `leave()` frees it."""

    def __init__(self, max_in_flight: int, max_queue: int) -> None:
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self.in_flight = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(max_in_flight)
        self._mean_s = 1.0
        """Moving average of how long a slot is held, for Retry-After."""

    async def enter(self) -> float:
        """Take a slot, waiting in line if all are busy; returns the time it was taken (for `leave`)."""
        if self._slots.locked() and self.waiting >= self.max_queue:
            raise RateLimitError(
                f"the gateway is at capacity ({self.in_flight} requests running, {self.waiting} waiting): "
                "retry later",
                retry_after_s=self.retry_after_s(),
            )
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        return time.monotonic()

    def leave(self, entered: float) -> None:
        self.in_flight -= 1
        self._slots.release()
        self._mean_s = 0.9 * self._mean_s + 0.1 * (time.monotonic() - entered)

    def retry_after_s(self) -> int:
        """Roughly when a queued request would start: the queue drains `max_in_flight` per mean duration."""
        rounds = (self.waiting + 1) / self.max_in_flight
        return max(1, min(60, math.ceil(self._mean_s * rounds)))
