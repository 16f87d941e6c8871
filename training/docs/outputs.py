"""Atomic output: every file of a run is written to a temporary sibling first and renamed into place only
once all of them are written, so a run that fails at any point leaves the previous run's files intact."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
PAIRS_FILE = "pairs.jsonl"
CARD_FILE = "card.json"
CACHE_FILE = "teacher-cache.sqlite"


def jsonl(records: Iterable[Any]) -> str:
    """Records as JSON lines (UTF-8, not ASCII-escaped)."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


class StagedFiles:
    """Collect a run's files, then `commit` them: each is renamed over its old version (atomic per file)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._staged: list[tuple[Path, Path]] = []

    def stage(self, name: str, text: str) -> None:
        """Write `text` to a temporary file next to `out_dir / name` (fsynced)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.out_dir)
        os.fchmod(fd, 0o644)  # mkstemp makes files private; these are data for people to read and share
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        self._staged.append((Path(temp), self.out_dir / name))

    def commit(self) -> None:
        """Rename every staged file into place."""
        for temp, final in self._staged:
            os.replace(temp, final)
        self._staged = []

    def discard(self) -> None:
        """Remove staged files that were not committed."""
        for temp, _ in self._staged:
            temp.unlink(missing_ok=True)
        self._staged = []
