"""A training run's configuration: the `TrainConfig` fields a recipe YAML sets, and reading that YAML."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

from core.settings import DEFAULT_CHAT_MODEL, validation_message
from core.textfiles import read_text

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float32": "float32", "fp32": "float32"}


@dataclass(config=ConfigDict(extra="forbid", use_attribute_docstrings=True))
class TrainConfig:
    """Everything one training run depends on; recorded in the adapter's manifest."""

    output_name: str
    """Adapter name in the registry; the run adds a new candidate version of it (promotion serves it)."""
    data_files: list[Path]
    """OpenAI chat JSONL files. In a YAML config, relative paths are relative to the config's directory."""
    base_model: str = DEFAULT_CHAT_MODEL
    """Base model reference: a packaged name, a local directory or a hub id (as `core.models` resolves)."""
    lora_r: int = Field(default=16, ge=1)
    """LoRA rank; serving's `vllm.max_lora_rank` must be at least this."""
    lora_alpha: int = Field(default=32, ge=1)
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(ALL_LINEAR))
    """Linear layers that get LoRA weights: all of a Llama block's projections by default."""
    learning_rate: float = Field(default=3e-4, gt=0.0)
    """Peak learning rate, reached after warmup and decayed to zero on a cosine."""
    warmup_ratio: float = Field(default=0.05, ge=0.0, le=1.0)
    """Fraction of the steps spent ramping the learning rate up linearly from zero."""
    weight_decay: float = Field(default=0.0, ge=0.0)
    max_grad_norm: float = Field(default=1.0, gt=0.0)
    """Gradients are clipped to this global norm."""
    epochs: int = Field(default=1, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    """Stop after this many optimizer steps even if epochs remain (smoke runs)."""
    batch_size: int = Field(default=8, ge=1)
    """Conversations per optimizer step."""
    micro_batch_size: int | None = Field(default=None, ge=1)
    """Conversations (packed rows, with `packing`) per forward/backward pass; a step accumulates the
    gradients of its micro-batches, so the update is the same, only peak memory falls. Unset: the whole
    step at once. Activation memory grows with tokens per pass: SmolLM2-135M keeps ~2.8 MB per token, so
    4 conversations of 2k tokens need ~25 GB, one needs ~6 GB."""
    max_length: int = Field(default=512, ge=8)
    """Tokens per conversation; longer ones are reported and skipped (a cut reply would teach the model
    not to stop), as `lorag train validate` shows. With `packing`, also the most tokens in one packed row."""
    strict: bool = False
    """Fail on any data problem (listing them all) instead of skipping the bad rows with a warning."""
    packing: bool = False
    """Pack each step's conversations (drawn at random) into shared rows, with attention kept within each
    conversation, instead of grouping conversations of similar length and padding them. Off by default:
    on CPU, length grouping already leaves little padding and packed rows pay for longer attention
    (see `lorag bench train`)."""
    checkpoint_every: int = Field(default=50, ge=1)
    """Save a checkpoint (LoRA weights, optimizer, scheduler, RNG, step) every this many steps."""
    seed: int = 0
    """Seeds LoRA initialisation, dropout and the batch order."""
    dtype: Literal["bfloat16", "bf16", "float32", "fp32"] = "bfloat16"
    """Base weights' dtype during training; LoRA weights are always float32 (PEFT upcasts them)."""
    autocast: bool = True
    """With bfloat16 base weights, run the LoRA matmuls in bfloat16 too (torch autocast) instead of
    upcasting every adapted layer's input to float32. LoRA weights, gradients' accumulation and the
    optimizer stay float32 (mixed precision); the float32 copies were most of a CPU step's memory traffic."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, for manifests."""
        return {**dataclasses.asdict(self), "data_files": [str(p) for p in self.data_files]}


def load_config(path: Path) -> TrainConfig:
    """A `TrainConfig` from a YAML file; relative data paths are resolved against the file's directory."""
    try:
        raw = yaml.safe_load(read_text(path))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ValueError(f"{where}: invalid YAML: {exc.problem}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of TrainConfig fields")
    base = Path(path).resolve().parent
    raw["data_files"] = [base / Path(p) for p in raw.get("data_files") or []]
    try:
        return TrainConfig(**raw)
    except ValidationError as exc:
        raise ValueError(f"{path}: {validation_message(exc)}") from None
