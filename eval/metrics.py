"""Answer and retrieval metrics: pure functions that import nothing else from lorag.

Each aggregate returns `{"score": mean, "individual_scores": [...]}` so callers can report both.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower-case, Unicode-normalised (NFKC), with runs of whitespace collapsed to one space."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def answer_contained(prediction: str, answers: Sequence[str]) -> bool:
    """True if any acceptable answer appears in the prediction (after `normalize`)."""
    text = normalize(prediction)
    return any(normalize(answer) in text for answer in answers if answer.strip())


def containment(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Share of predictions that contain one of their acceptable answers."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} answer lists")
    scores = [1.0 if answer_contained(p, a) else 0.0 for p, a in zip(predictions, answers, strict=True)]
    return {"score": sum(scores) / len(scores) if scores else 0.0, "individual_scores": scores}


def recall_at_k(retrieved: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], k: int) -> dict[str, Any]:
    """Per query, the share of its gold sources found among its first `k` retrieved sources.

    Queries without gold sources are skipped (they do not count as 0 or 1).
    """
    if len(retrieved) != len(gold):
        raise ValueError(f"{len(retrieved)} result lists for {len(gold)} gold lists")
    scores = [
        len(set(found[:k]) & set(expected)) / len(set(expected))
        for found, expected in zip(retrieved, gold, strict=True)
        if expected
    ]
    return {"score": sum(scores) / len(scores) if scores else 0.0, "individual_scores": scores}


def mrr(
    retrieved: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], k: int | None = None
) -> dict[str, Any]:
    """Mean reciprocal rank: per query, 1 / the rank of its first gold source among the retrieved (0 if none).

    `k` looks at the first `k` retrieved only (MRR@k). Queries without gold sources are skipped, as in
    `recall_at_k`.
    """
    if len(retrieved) != len(gold):
        raise ValueError(f"{len(retrieved)} result lists for {len(gold)} gold lists")
    scores = [
        _reciprocal_rank(found[:k], set(expected))
        for found, expected in zip(retrieved, gold, strict=True)
        if expected
    ]
    return {"score": sum(scores) / len(scores) if scores else 0.0, "individual_scores": scores}


def _reciprocal_rank(found: Sequence[str], expected: set[str]) -> float:
    return next((1.0 / rank for rank, item in enumerate(found, start=1) if item in expected), 0.0)
