"""Hot swap: the gateway follows the index's `current` pointer without a restart.

A background task polls `index_dir/current` (one `readlink`, cheap); when it names another snapshot, the
new snapshot is opened off the event loop and swapped in with one attribute assignment. A request that
already took the old retriever finishes on it — its files stay readable even if retention removes the
directory, since open files outlive their names — so no in-flight request fails. It works the same whether
the refresh ran in this process (`--refresh-every`) or in another one (a cron job).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from core.types import Hit

log = logging.getLogger("lorag.index")


class SnapshotSearcher(Protocol):
    """A retriever bound to one snapshot."""

    @property
    def snapshot_id(self) -> str: ...

    def search(self, query: str, k: int, **options: Any) -> list[Hit]: ...

    def close(self) -> None: ...


def current_target(index_dir: Path) -> str | None:
    """Where `current` points (the snapshot's relative path), or None when there is no index yet."""
    try:
        return os.readlink(index_dir / "current")
    except OSError:
        return None


class LiveSearcher:
    """Searches whichever snapshot is current; `reload_if_changed` swaps to a new one."""

    def __init__(
        self, index_dir: Path, open_snapshot: Callable[[Path], SnapshotSearcher], grace_s: float = 330.0
    ) -> None:
        """`open_snapshot(index_dir)` opens the snapshot `current` points at (and may be slow). A replaced
        snapshot is closed `grace_s` after the swap (longer than any request may run), not at once:
        requests that took it before the swap are still reading it."""
        self.index_dir = index_dir
        self._open = open_snapshot
        self.grace_s = grace_s
        self._target = current_target(index_dir)
        self._searcher = open_snapshot(index_dir)
        self._retired: list[tuple[float, SnapshotSearcher]] = []

    @property
    def snapshot_id(self) -> str:
        return self._searcher.snapshot_id

    def current(self) -> SnapshotSearcher:
        """The searcher to use for one request: keep it for the whole request."""
        return self._searcher

    def reload_if_changed(self) -> bool:
        """Open the snapshot `current` now names, if it changed; True when a swap happened.

        A snapshot that fails to open is logged and the old one keeps serving.
        """
        target = current_target(self.index_dir)
        if target is None or target == self._target:
            return False
        try:
            searcher = self._open(self.index_dir)
        except Exception:
            log.exception("could not open the new snapshot %s; still serving %s", target, self.snapshot_id)
            self._target = target  # do not retry a broken snapshot in a tight loop
            return False
        previous, self._searcher, self._target = self._searcher, searcher, target
        self._retired.append((time.monotonic(), previous))
        log.info("index snapshot %s -> %s", previous.snapshot_id, searcher.snapshot_id)
        return True

    def close_retired(self, now: float | None = None) -> int:
        """Close replaced snapshots whose grace period is over (their files and SQLite connections)."""
        now = time.monotonic() if now is None else now
        due = [searcher for retired_at, searcher in self._retired if now - retired_at >= self.grace_s]
        self._retired = [(at, searcher) for at, searcher in self._retired if now - at < self.grace_s]
        for searcher in due:
            searcher.close()
        return len(due)

    async def follow(self, interval_s: float) -> None:
        """Poll forever (cancel the task to stop)."""
        while True:
            await asyncio.sleep(interval_s)
            await asyncio.to_thread(self.reload_if_changed)
            self.close_retired()
