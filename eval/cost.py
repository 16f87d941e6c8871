"""Cost: turn measured tokens and throughput into dollars per 1,000 requests and per hour, day and month.

A route is priced one of two ways:

- per token, as APIs bill: `prompt_tokens * input_per_million / 1e6 + completion_tokens * output_per_million
  / 1e6` per request;
- per GPU-hour, for our own servers: one replica of `gpus` GPUs costs `gpu_hour * gpus` an hour whether busy
  or not, so a request costs `gpu_hour * gpus / 3600 / capacity_rps`, where `capacity_rps` is the requests
  per second one replica sustains at saturation, measured with this route's own prompts. Retrieval that
  lengthens prompts shows up as a lower `capacity_rps`, hence a higher cost per request.

A month is 30 days.
"""

from __future__ import annotations

import math
from typing import TypedDict

from core.prices import Price

HOURS_PER_DAY = 24
DAYS_PER_MONTH = 30


class Projection(TypedDict):
    """The cost of serving a steady request rate, in USD."""

    per_hour: float
    per_day: float
    per_month: float
    replicas: int | None
    """Whole replicas needed at that rate (GPU price and a measured capacity given), else None."""


def cost_per_request(
    price: Price, prompt_tokens: float, completion_tokens: float, *, capacity_rps: float | None = None
) -> float:
    """USD for one request of the given (mean) token counts; GPU prices need the measured `capacity_rps`."""
    if price.gpu_hour is None:
        assert price.input_per_million is not None and price.output_per_million is not None  # the validator
        return (prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million) / 1e6
    if capacity_rps is None or capacity_rps <= 0:
        raise ValueError("a per-GPU-hour price needs the measured capacity_rps (requests/s per replica)")
    return price.gpu_hour * price.gpus / 3600 / capacity_rps


def cost_per_1000(
    price: Price,
    prompt_tokens_mean: float,
    completion_tokens_mean: float,
    *,
    capacity_rps: float | None = None,
) -> float:
    """USD per 1,000 requests with the given mean token counts (see `cost_per_request`)."""
    return 1000 * cost_per_request(
        price, prompt_tokens_mean, completion_tokens_mean, capacity_rps=capacity_rps
    )


def projection(
    price: Price, per_request_cost: float, requests_per_second: float, *, capacity_rps: float | None = None
) -> Projection:
    """What `requests_per_second`, kept up all the time, costs an hour, a day and a month.

    Per-token prices scale with traffic: `per_request_cost * requests_per_second`. GPU prices with a measured
    `capacity_rps` are paid per whole replica, busy or not, so the rate is rounded up to replicas; without
    a capacity they fall back to `per_request_cost`, as if replicas could be fractional.
    """
    if requests_per_second < 0:
        raise ValueError(f"requests_per_second must be >= 0, got {requests_per_second}")
    replicas: int | None = None
    per_hour = per_request_cost * requests_per_second * 3600
    if price.gpu_hour is not None and capacity_rps is not None:
        if capacity_rps <= 0:
            raise ValueError(f"capacity_rps must be > 0, got {capacity_rps}")
        # Rounded first so that float noise (2.0000000001 replicas) does not buy a whole extra replica.
        replicas = math.ceil(round(requests_per_second / capacity_rps, 9))
        per_hour = replicas * price.gpus * price.gpu_hour
    per_day = per_hour * HOURS_PER_DAY
    return Projection(
        per_hour=per_hour, per_day=per_day, per_month=per_day * DAYS_PER_MONTH, replicas=replicas
    )
