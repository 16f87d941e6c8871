"""An adapter's promotion history, `<name>/history.jsonl`: what was served when, and how to go back.

One JSON object per line, appended under a lock:

    {"action": "promote", "version": "v3", "previous": "v2", "at": "...", "forced": false, "gate": "..."}
    {"action": "rollback", "version": "v2", "previous": "v3", "at": "..."}

`promoted_at` of a version is the `at` of its promote entry (manifests are immutable, so it lives here).
Rollback is a stack: promote pushes, rollback pops, so two rollbacks after v1 → v2 → v3 land on v1.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

HISTORY = "history.jsonl"
LOCK = ".lock"


class NothingToRollBackError(LookupError):
    """The current version is the first one promoted: there is no earlier one to go back to."""


def now() -> str:
    """UTC, to the second, ISO 8601: the registry's timestamps."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def entry(
    action: Literal["promote", "rollback"],
    version: str,
    previous: str | None,
    *,
    forced: bool = False,
    gate: str | None = None,
) -> dict[str, Any]:
    """One history line: `version` became current in place of `previous`."""
    record: dict[str, Any] = {"action": action, "version": version, "previous": previous, "at": now()}
    if action == "promote":
        record.update(forced=forced, gate=gate)
    return record


def read(folder: Path) -> list[dict[str, Any]]:
    """The entries of `folder/history.jsonl`, oldest first (none when there is no file yet)."""
    path = folder / HISTORY
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append(folder: Path, record: dict[str, Any]) -> None:
    """Add one line; a line is written with one `write` and fsynced, so a crash loses at most that line."""
    with (folder / HISTORY).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def stack(entries: Sequence[dict[str, Any]], current: str) -> list[str]:
    """The versions a run of rollbacks would pass through, with `current` on top.

    Replays promote (push) and rollback (pop). An alias moved without an entry (`set_current`, a crash
    between the alias switch and the history write, a registry older than the history) is taken as a
    promotion, so the result always ends with `current`.
    """
    versions: list[str] = []
    for record in entries:
        if record["action"] == "promote":
            if record.get("previous") and (not versions or versions[-1] != record["previous"]):
                versions.append(record["previous"])
            versions.append(record["version"])
        elif record["action"] == "rollback":
            if versions:
                versions.pop()
            if not versions or versions[-1] != record["version"]:
                versions.append(record["version"])
    if not versions or versions[-1] != current:
        versions.append(current)
    return versions


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the adapter's folder, so that concurrent promotions and rollbacks of one
    adapter read and write the alias and the history in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
