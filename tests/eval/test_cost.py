from __future__ import annotations

import pytest
from pydantic import ValidationError

from eval.cost import Price, cost_per_1000, cost_per_request, projection


def test_retrieval_that_adds_100k_prompt_tokens_at_100_requests_a_second():
    """The issue's example, by hand: 100,000 tokens * $0.15 / 1,000,000 = $0.015 a request; $15 per 1,000
    requests; at 100 requests/s that is $1.50 a second: $5,400 an hour, $129,600 a day, $3,888,000 a month."""
    price = Price(input_per_million=0.15, output_per_million=0.60)
    extra = cost_per_request(price, prompt_tokens=100_000, completion_tokens=0)
    assert extra == pytest.approx(1.5e-2)
    assert cost_per_1000(price, 100_000, 0) == pytest.approx(15.0)
    assert projection(price, extra, 100) == {
        "per_hour": pytest.approx(5_400.0),
        "per_day": pytest.approx(129_600.0),
        "per_month": pytest.approx(3_888_000.0),
        "replicas": None,
    }


def test_per_token_cost_counts_prompt_and_completion_at_their_prices():
    # 2,000 prompt tokens at $3/M = $0.006; 500 completion tokens at $15/M = $0.0075; total $0.0135.
    price = Price(input_per_million=3, output_per_million=15)
    assert cost_per_request(price, 2_000, 500) == pytest.approx(0.0135)
    assert cost_per_1000(price, 2_000, 500) == pytest.approx(13.5)


def test_gpu_hour_cost_comes_from_measured_capacity():
    # Two $2 GPUs cost $4 an hour, $4/3600 a second; at 5 requests/s that is $4/18,000 = $0.000222 a request.
    price = Price(gpu_hour=2.0, gpus=2)
    assert price.per_gpu_hour
    per_request = cost_per_request(price, 100_000, 200, capacity_rps=5)
    assert per_request == pytest.approx(4 / 18_000)
    assert cost_per_1000(price, 100_000, 200, capacity_rps=5) == pytest.approx(4 / 18)
    # 12 requests/s needs 3 replicas of capacity 5, each $4 an hour, busy or not.
    assert projection(price, per_request, 12, capacity_rps=5) == {
        "per_hour": pytest.approx(12.0),
        "per_day": pytest.approx(288.0),
        "per_month": pytest.approx(8_640.0),
        "replicas": 3,
    }
    # Exactly at capacity is 7 replicas, not 8, though 2.1 / 0.3 == 7.000000000000001 in floats.
    assert 2.1 / 0.3 > 7
    assert projection(price, per_request, 2.1, capacity_rps=0.3)["replicas"] == 7
    # Without a capacity, the projection assumes fractional replicas: 12 * 3600 * $4/18,000 = $9.60 an hour.
    assert projection(price, per_request, 12)["per_hour"] == pytest.approx(9.6)
    with pytest.raises(ValueError, match="capacity_rps"):
        cost_per_request(price, 1, 1)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"input_per_million": 1.0},
        {"input_per_million": 1.0, "output_per_million": 2.0, "gpu_hour": 3.0},
        {"gpu_hour": -1.0},
        {"gpu_hour": 1.0, "gpus": 0},
        {"gpu_hour": 1.0, "currency": "EUR"},
    ],
)
def test_price_is_one_kind_and_well_formed(fields):
    with pytest.raises(ValidationError):
        Price.model_validate(fields)


def test_price_reads_from_config_mappings():
    prices = {
        name: Price.model_validate(value)
        for name, value in {
            "api": {"input_per_million": 0.15, "output_per_million": 0.6},
            "h100": {"gpu_hour": 2.5},
        }.items()
    }
    assert not prices["api"].per_gpu_hour and prices["h100"].gpus == 1
