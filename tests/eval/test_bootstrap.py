from __future__ import annotations

import numpy as np
import pytest

from eval import bootstrap
from eval.bootstrap import bootstrap_ci, paired_difference, summarize


def _scores(n: int, seed: int) -> list[float]:
    """n right-or-wrong answers, about 70% right."""
    return [float(x) for x in np.random.default_rng(seed).random(n) < 0.7]


def test_bootstrap_is_deterministic_with_the_seed():
    values = [float(x) for x in np.random.default_rng(1).random(50)]  # continuous, so seeds tell apart
    assert bootstrap_ci(values) == bootstrap_ci(values)
    assert bootstrap_ci(values, seed=1) != bootstrap_ci(values, seed=2)


def test_interval_covers_the_mean_and_narrows_with_more_items():
    small, large = _scores(40, 3), _scores(4000, 3)
    intervals = [bootstrap_ci(values) for values in (small, large)]
    for values, (low, high) in zip((small, large), intervals, strict=True):
        assert low < float(np.mean(values)) < high
    widths = [high - low for low, high in intervals]
    # The width shrinks as 1/sqrt(n): 100 times the items, about a tenth of the width.
    assert widths[1] < widths[0] / 5


def test_interval_matches_the_normal_approximation_for_a_large_sample():
    values = _scores(2000, 4)
    low, high = bootstrap_ci(values, n_resamples=4000)
    standard_error = float(np.std(values) / np.sqrt(len(values)))
    assert high - low == pytest.approx(2 * 1.96 * standard_error, rel=0.1)


def test_constant_scores_and_bad_arguments():
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    assert bootstrap_ci([1.0]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], confidence=1.0)


def test_batching_does_not_change_the_interval(monkeypatch):
    values = _scores(30, 5)
    whole = bootstrap_ci(values, n_resamples=500)
    monkeypatch.setattr(bootstrap, "_CELLS_PER_BATCH", 7 * 30)
    assert bootstrap_ci(values, n_resamples=500) == whole


def test_summarize():
    summary = summarize([1.0, 0.0, 1.0, 1.0])
    assert summary["mean"] == 0.75 and summary["n"] == 4
    assert summary["low"] is not None and summary["high"] is not None
    assert 0.0 <= summary["low"] <= 0.75 <= summary["high"] <= 1.0
    assert summarize([]) == {"mean": None, "low": None, "high": None, "n": 0}


def test_paired_difference_is_narrower_than_separate_intervals():
    rng = np.random.default_rng(6)
    difficulty = rng.random(300)
    baseline = [float(d < 0.6) for d in difficulty]
    # The candidate answers the same questions plus a few harder ones: a small, consistent gain.
    candidate = [float(d < 0.65) for d in difficulty]
    paired = paired_difference(candidate, baseline)
    assert paired["mean"] == pytest.approx(np.mean(candidate) - np.mean(baseline))
    assert paired["low"] is not None and paired["high"] is not None and paired["low"] > 0
    separate = [bootstrap_ci(values) for values in (candidate, baseline)]
    assert separate[0][0] < separate[1][1]  # the separate intervals overlap; pairing still sees the gain
    with pytest.raises(ValueError, match="same items"):
        paired_difference([1.0], [1.0, 0.0])
