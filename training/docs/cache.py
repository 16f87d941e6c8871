"""The teacher-call cache: SQLite, one row per call, committed as each call completes.

A call is keyed by what determines its answer: the kind of call, the content hash of the chunk it is
about, what is asked (a sentence or a question), the teacher's identity, the prompt version and the
generation parameters. So a re-run after a few documents changed calls the teacher only for changed
chunks, and a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from training.docs.pairs import sha

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    teacher TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    reply TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def call_key(
    kind: str, chunk_hash: str, subject: str, teacher: str, prompt_version: str, params: dict[str, Any]
) -> str:
    """sha256 over everything that decides a call's reply."""
    return sha(json.dumps([kind, chunk_hash, subject, teacher, prompt_version, params], sort_keys=True))


class CallCache:
    """Replies by call key. Use from one thread (the run's main thread writes as calls complete)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        if read_only:
            # For plans (--dry-run): look, never create or change anything.
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The cached replies among `keys`."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(f"SELECT key, reply FROM calls WHERE key IN ({marks})", batch)
            found.update(dict(rows.fetchall()))
        return found

    def put(self, key: str, kind: str, teacher: str, prompt_version: str, reply: str) -> None:
        """Store one reply and commit at once, so that a killed run keeps it."""
        self._db.execute(
            "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?)",
            (key, kind, teacher, prompt_version, reply, time.time()),
        )
        self._db.commit()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> CallCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
