"""One writer at a time per index directory: an exclusive `flock` on `index_dir/.refresh.lock`.

The kernel drops the lock when its holder exits, however it exits (SIGKILL included), so a crashed refresh
never leaves a stale lock behind. The holder writes its pid and start time into the file, only so that the
error a second writer gets can say who holds it. Readers (serving) never take the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from retrieval.errors import RefreshInProgressError

LOCK_FILE = ".refresh.lock"


@contextmanager
def refresh_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index directory's writer lock for the `with` block (creating the directory if needed).

    Raises `RefreshInProgressError` at once, naming the holder, if another process or thread holds it.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RefreshInProgressError(
                f"another build, refresh or rollback of {index_dir} is running ({_holder(fd)}); "
                "try again when it has finished"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder recorded it."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        # The holder has the lock but has not written its name yet.
        return "holder unknown"
