"""Retrieval metrics: pure functions over source ids, used by the refresh gate and by the evaluation reports.

Each returns `{"score": mean, "individual_scores": [...]}` (as `eval.metrics` does for answers). Queries
without gold sources are skipped: they count as neither 0 nor 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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
