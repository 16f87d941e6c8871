"""What a route's model costs: the price table that the settings hold and `eval.cost` turns into dollars."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Price(BaseModel):
    """What a route's model costs, in USD: either per million tokens or per GPU-hour (not both)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million: float | None = Field(default=None, ge=0)
    """USD per million prompt tokens."""
    output_per_million: float | None = Field(default=None, ge=0)
    """USD per million completion tokens."""
    gpu_hour: float | None = Field(default=None, ge=0)
    """USD per GPU per hour."""
    gpus: int = Field(default=1, ge=1)
    """GPUs that one replica of the server holds (tensor parallelism); only with `gpu_hour`."""

    @model_validator(mode="after")
    def _one_way_of_pricing(self) -> Self:
        per_token = (self.input_per_million, self.output_per_million)
        if self.gpu_hour is not None and any(value is not None for value in per_token):
            raise ValueError("price per token or per GPU-hour, not both")
        if self.gpu_hour is None and None in per_token:
            raise ValueError("give input_per_million and output_per_million, or gpu_hour")
        return self

    @property
    def per_gpu_hour(self) -> bool:
        """True when the price is per GPU-hour, so a measured capacity is needed to cost a request."""
        return self.gpu_hour is not None
