import numpy as np
import pytest

from core.stats import percentile


@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0, 4.0], [5.0, 1.0, 3.0], [1.0, 2.0], [7.0]])
@pytest.mark.parametrize("q", [0, 50, 95, 99, 100])
def test_percentile_interpolates_like_numpy(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_or_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_percentile_hand_computed() -> None:
    values = [0.9, 0.1, 0.4, 0.25, 3.0, 0.7, 1.2]
    for q in (0, 5, 25, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    # Hand-computed: four values sorted 1, 2, 3, 4; p50 sits halfway between ranks 1 and 2 (0-based): 2.5.
    # p95 sits at rank 0.95 * 3 = 2.85: 3 + 0.85 * (4 - 3) = 3.85.
    assert percentile([4, 1, 3, 2], 50) == 2.5 and percentile([4, 1, 3, 2], 95) == pytest.approx(3.85)
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)
