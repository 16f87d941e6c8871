"""Reviewer marks: `review.jsonl` in the output folder, written by people and only ever read by lorag.

One mark a line: `{"id": "<pair id from pairs.jsonl>", "mark": "accept" | "reject", "note": "..."}` (the
note is optional). Pair ids are hashes of the question and its fact, so a mark keeps applying to the same
pair in every later run, however the documents around it change. A rejected pair never enters training
(and an eval item it produced is retired); an accepted one is kept even past the per-fact cap. Marks whose
pair no longer exists are reported as stale in the data card.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.docs.errors import ReviewFileError

REVIEW_FILE = "review.jsonl"
MARKS = frozenset({"accept", "reject"})


def read_marks(path: Path) -> dict[str, str]:
    """Pair id → mark; the last mark for an id wins. `ReviewFileError` names a bad line."""
    if not path.is_file():
        return {}
    marks: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            pair_id, mark = record["id"], record["mark"]
        except (ValueError, KeyError, TypeError):
            raise ReviewFileError(
                f'{path}:{number}: expected {{"id": ..., "mark": "accept" | "reject"}}'
            ) from None
        if not isinstance(pair_id, str) or mark not in MARKS:
            raise ReviewFileError(f'{path}:{number}: "mark" must be "accept" or "reject", "id" a string')
        marks[pair_id] = mark
    return marks
