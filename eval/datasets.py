"""Evaluation datasets: JSONL records of `{id, question, answers, kind, gold_sources}`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DEMO_DATASET = Path(__file__).parent / "datasets" / "demo.jsonl"


@dataclass(frozen=True)
class Question:
    """One evaluation item."""

    id: str
    question: str
    answers: list[str]
    """Acceptable short answers; a response is right if it contains one of them."""
    kind: str = "static"
    """`static` (adapter knowledge) or `evolving` (index knowledge)."""
    gold_sources: list[str] = field(default_factory=list)
    """Source ids that hold the answer, for retrieval metrics."""


def load_questions(path: Path = DEMO_DATASET) -> list[Question]:
    """Read a JSONL dataset; errors name the line."""
    questions = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            questions.append(Question(**record))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    return questions
