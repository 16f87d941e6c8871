"""The eval set a version is gated on, kept with the version.

The quarterly retrain gates a candidate against the current version on the union of the set the current
version was gated on (or, for a version that kept none, the route's frozen eval set) and the new frozen
eval set that `train data from-docs` wrote. Items whose source chunk changed this quarter (the data card's
`retired_eval`) leave the union: they ask for a fact the documents no longer state. The union is written
once, copied into the candidate's registry version (`GATE_SET`) and named with its hash in the manifest
(`gate_eval`), so next quarter's gate starts from exactly what this one used.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.textfiles import lines, read_json
from training.registry import AdapterVersion

GATE_SET = "gate-eval.jsonl"
"""The file name of the kept set inside a registry version."""
MANIFEST_FIELD = "gate_eval"


@dataclass(frozen=True)
class GateSet:
    """A written union: where it is, its hash, and what it was made of."""

    path: Path
    sha256: str
    questions: int
    sources: list[dict[str, Any]]
    """One entry per input file: its path, hash and how many of its questions went in."""
    retired: int
    """Items left out because the documents changed under them."""

    def manifest_field(self) -> dict[str, Any]:
        """What the candidate's manifest records under `gate_eval`."""
        return {
            "file": GATE_SET,
            "sha256": self.sha256,
            "questions": self.questions,
            "retired": self.retired,
            "from": self.sources,
        }


def kept_gate_set(version: AdapterVersion | None) -> Path | None:
    """The eval set `version` was gated on, if it kept one (versions trained by `retrain --docs` do)."""
    if version is None or MANIFEST_FIELD not in version.manifest:
        return None
    path = version.path / str(version.manifest[MANIFEST_FIELD].get("file", GATE_SET))
    return path if path.is_file() else None


def question_key(row: dict[str, Any]) -> str:
    """Two rows ask the same question when their texts match, case and spacing aside."""
    return re.sub(r"\s+", " ", str(row.get("question", ""))).strip().casefold()


def union_rows(
    files: Sequence[Path], retired_ids: Iterable[str] = ()
) -> tuple[list[dict[str, Any]], list[int], int]:
    """(rows of every file, first occurrence of a question kept; how many each file contributed; how many
    were left out as retired). Rows are kept as written, so the union is in the same eval format."""
    retired = set(retired_ids)
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    taken: list[int] = []
    dropped = 0
    for file in files:
        count = 0
        for row in _rows(file):
            if row.get("id") in retired:
                dropped += 1
                continue
            key = question_key(row)
            if key in seen:
                continue
            seen.add(key)
            rows.append(row)
            count += 1
        taken.append(count)
    return rows, taken, dropped


def write_gate_set(files: Sequence[Path], out: Path, retired_ids: Iterable[str] = ()) -> GateSet:
    """Write the union of `files` (minus `retired_ids`) to `out` as JSONL; a `ValueError` if it is empty."""
    rows, taken, dropped = union_rows(files, retired_ids)
    if not rows:
        raise ValueError(f"no questions to gate on in {', '.join(map(str, files))}")
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    sources = [
        {"path": str(file), "sha256": _sha256(file.read_bytes()), "questions": count}
        for file, count in zip(files, taken, strict=True)
    ]
    return GateSet(out, _sha256(text.encode("utf-8")), len(rows), sources, dropped)


def retired_ids(card: Path) -> list[str]:
    """The ids of the eval items a `from-docs` data card says were retired this run."""
    if not card.is_file():
        return []
    data = read_json(card)
    return [str(item["id"]) for item in data.get("retired_eval", []) if "id" in item]


def _rows(file: Path) -> Iterable[dict[str, Any]]:
    for number, text in lines(file):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{file}:{number}: invalid JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise ValueError(f"{file}:{number}: an eval item is a JSON object")
        yield row


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
