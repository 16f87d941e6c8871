"""The refresh gate: refuse a new snapshot whose retrieval recall fell below the current one's.

Recall@k is `eval.metrics.recall_at_k`, the same pure function the evaluation reports use, so the gate and
the reports can never disagree on what "recall" means.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.types import Hit
from retrieval.metrics import recall_at_k


class Searchable(Protocol):
    def search(self, query: str, k: int) -> list[Hit]: ...


@dataclass(frozen=True)
class GateQuestion:
    """A question and the sources that should be retrieved for it."""

    question: str
    gold_sources: list[str]


@dataclass(frozen=True)
class RecallGateResult:
    """The gate's verdict with the numbers behind it."""

    passed: bool
    new_recall: float
    current_recall: float | None
    k: int
    margin: float
    reason: str


def load_gate_questions(path: Path) -> list[GateQuestion]:
    """Questions with `gold_sources` from a JSONL file (the eval dataset format); others are ignored."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if record.get("gold_sources"):
                questions.append(GateQuestion(record["question"], list(record["gold_sources"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    if not questions:
        raise ValueError(f"{path} has no questions with gold_sources")
    return questions


def snapshot_recall(searcher: Searchable, questions: Sequence[GateQuestion], k: int) -> float:
    """Mean recall@k of the questions' gold sources in `searcher`'s results."""
    retrieved = [[hit.chunk.source_id for hit in searcher.search(q.question, k)] for q in questions]
    return float(recall_at_k(retrieved, [q.gold_sources for q in questions], k)["score"])


def recall_gate(
    new: Searchable, current: Searchable | None, questions: Sequence[GateQuestion], k: int, margin: float
) -> RecallGateResult:
    """Pass unless the new snapshot's recall@k is below the current one's by more than `margin`."""
    new_recall = snapshot_recall(new, questions, k)
    if current is None:
        return RecallGateResult(True, new_recall, None, k, margin, "no current snapshot to compare with")
    current_recall = snapshot_recall(current, questions, k)
    passed = new_recall >= current_recall - margin
    verdict = "within" if passed else "more than"
    reason = (
        f"recall@{k} {new_recall:.3f} vs current {current_recall:.3f}: "
        f"{verdict} the allowed drop of {margin:.3f}"
    )
    return RecallGateResult(passed, new_recall, current_recall, k, margin, reason)
