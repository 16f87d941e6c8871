"""Bootstrap confidence intervals for the mean of per-item scores, alone or paired.

Percentile bootstrap: resample the items with replacement `n_resamples` times, take each resample's mean,
and report the `(1 - confidence) / 2` and `(1 + confidence) / 2` quantiles of those means (numpy's default
linear interpolation). The generator is seeded, so the same scores always give the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np

_CELLS_PER_BATCH = 4_000_000
"""Resampled indices drawn at once (32 MB of int64), so that large datasets do not need n_resamples × n."""


class Summary(TypedDict):
    """The mean of per-item scores and its bootstrap interval; the floats are None when there are no items."""

    mean: float | None
    low: float | None
    high: float | None
    n: int


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """The percentile-bootstrap interval `(low, high)` for the mean of `values`."""
    if not values:
        raise ValueError("bootstrap of no values")
    if n_resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"need n_resamples >= 1 and 0 < confidence < 1, got {n_resamples}, {confidence}")
    data = np.asarray(values, dtype=float)
    means = _resampled_means(data, n_resamples, np.random.default_rng(seed))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def _resampled_means(data: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    batch = max(1, _CELLS_PER_BATCH // len(data))
    chunks = []
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        chunks.append(data[rng.integers(0, len(data), size=(size, len(data)))].mean(axis=1))
    return np.concatenate(chunks)


def summarize(
    values: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Summary:
    """`{mean, low, high, n}` of per-item scores (a metric's `individual_scores`)."""
    if not values:
        return Summary(mean=None, low=None, high=None, n=0)
    low, high = bootstrap_ci(values, n_resamples, confidence, seed)
    return Summary(mean=float(np.mean(values)), low=low, high=high, n=len(values))


def paired_difference(
    candidate: Sequence[float],
    baseline: Sequence[float],
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Summary:
    """`summarize` of `candidate[i] - baseline[i]`: the mean difference on the same items, with its interval.

    Pairing removes the spread between easy and hard questions, which two separate intervals both carry, so
    a real difference shows up with far fewer questions.
    """
    if len(candidate) != len(baseline):
        raise ValueError(f"paired scores need the same items: {len(candidate)} vs {len(baseline)}")
    differences = [float(c) - float(b) for c, b in zip(candidate, baseline, strict=True)]
    return summarize(differences, n_resamples, confidence, seed)
