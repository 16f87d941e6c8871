"""Small statistics every layer needs: one percentile, so that benchmarks and reports agree."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0–100) by linear interpolation between the closest ranks, the same as
    `numpy.percentile(values, q)` with its default `method="linear"`.

    No values is an error (a percentile of nothing has no meaning): callers that may have none decide what
    to report instead (`None`, NaN, a dash).
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0–100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    below, above = math.floor(position), math.ceil(position)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
