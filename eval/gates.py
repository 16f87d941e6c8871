"""The promotion gate with the numbers behind it: promote a trained adapter only if it is not worse.

The gate takes per-item scores (a metric's `individual_scores`), so it judges with the same functions as
the reports. (The index's refresh gate is `retrieval.gate`: it runs inside a refresh, below this layer.)
The verdict is on the means alone: the candidate passes unless its mean falls below the
current mean by more than `margin`. The bootstrap intervals, and the paired difference when both were
scored on the same items, go into the message so that a reader can tell a real drop from noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eval.bootstrap import Summary, paired_difference, summarize

_TOLERANCE = 1e-9
"""A drop of exactly `margin` passes; this absorbs float rounding (0.7 vs 0.8 − 0.1 == 0.7000000000000001)."""


@dataclass(frozen=True)
class GateResult:
    """A gate's verdict and the numbers behind it."""

    passed: bool
    metric: str
    candidate: Summary
    current: Summary | None
    """None when there is nothing to compare with (the first adapter, the first snapshot): the gate passes."""
    margin: float
    """The largest drop of the mean that still passes."""
    message: str
    difference: Summary | None = None
    """Paired candidate − current on the same items, when both were scored on the same items."""


def promotion_gate(
    candidate_scores: Sequence[float],
    current_scores: Sequence[float] | None,
    margin: float,
    *,
    metric: str = "score",
    n_resamples: int = 2000,
    seed: int = 0,
) -> GateResult:
    """Promote a trained adapter unless its mean `metric` is below the current one's by more than `margin`.

    Scores are per question, in the same question order for both when they were asked the same questions.
    """
    return compare(metric, candidate_scores, current_scores, margin, n_resamples=n_resamples, seed=seed)


def compare(
    metric: str,
    candidate_scores: Sequence[float],
    current_scores: Sequence[float] | None,
    margin: float,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> GateResult:
    """The comparison the gate applies: candidate mean >= current mean − margin."""
    if not candidate_scores:
        raise ValueError(f"no {metric} scores for the candidate: nothing to gate on")
    if current_scores is not None and not current_scores:
        raise ValueError(f"no {metric} scores for the current one; pass None when there is no current one")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    candidate = summarize(candidate_scores, n_resamples, seed=seed)
    if current_scores is None:
        message = f"{metric}: candidate {_interval(candidate)}; no current one to compare with: pass"
        return GateResult(True, metric, candidate, None, margin, message)
    current = summarize(current_scores, n_resamples, seed=seed)
    assert candidate["mean"] is not None and current["mean"] is not None  # both are non-empty
    passed = candidate["mean"] >= current["mean"] - margin - _TOLERANCE
    difference = None
    if len(candidate_scores) == len(current_scores):
        difference = paired_difference(candidate_scores, current_scores, n_resamples, seed=seed)
    message = _message(metric, candidate, current, difference, margin, passed)
    return GateResult(passed, metric, candidate, current, margin, message, difference)


def _message(
    metric: str,
    candidate: Summary,
    current: Summary,
    difference: Summary | None,
    margin: float,
    passed: bool,
) -> str:
    if difference is not None:
        paired = f"paired difference {_interval(difference, signed=True)}"
    else:
        paired = f"not paired ({candidate['n']} vs {current['n']} items)"
    verdict = "within the allowed drop" if passed else "a drop of more than"
    return (
        f"{metric}: candidate {_interval(candidate)} vs current {_interval(current)}; {paired}; "
        f"{verdict} {margin:.3f}: {'pass' if passed else 'fail'}"
    )


def _interval(summary: Summary, *, signed: bool = False) -> str:
    """`0.712 [0.650, 0.770] (n=200)`: the mean and its 95% (or chosen) bootstrap interval."""
    form = "+.3f" if signed else ".3f"
    return f"{summary['mean']:{form}} [{summary['low']:{form}}, {summary['high']:{form}}] (n={summary['n']})"
