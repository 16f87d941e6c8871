"""Can the serving vLLM load this adapter? Checked when a version is registered and again when it is promoted.

vLLM loads a LoRA adapter only if its rank fits `--max-lora-rank`, and it serves LoRA weights only: layers a
PEFT run trained in full (`modules_to_save`) would be dropped without a word. An adapter is also only
meaningful on the exact base weights it was trained against, which the manifest records as a hash.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings

ADAPTER_CONFIG = "adapter_config.json"
log = logging.getLogger(__name__)


class IncompatibleAdapterError(ValueError):
    """The adapter cannot be served as configured; the message lists every reason."""


@dataclass(frozen=True)
class Requirements:
    """What the serving side needs of an adapter; None skips that check."""

    base_model_hash: str | None = None
    """`weights_sha256` of the base model vLLM serves; the manifest's `base_weights_sha256` must match."""
    max_lora_rank: int | None = None
    """vLLM's `--max-lora-rank`."""


def check_compatible(
    adapter_dir: Path, manifest: dict[str, Any], *, base_model_hash: str | None, max_lora_rank: int | None
) -> None:
    """Raise `IncompatibleAdapterError` naming every problem; `modules_to_save` is always refused."""
    config = read_adapter_config(adapter_dir)
    problems = []
    if config.get("modules_to_save"):
        problems.append(
            f"it trains modules_to_save={config['modules_to_save']}, which vLLM does not serve "
            "(only LoRA weights are loaded); retrain without modules_to_save"
        )
    rank = adapter_rank(config)
    if max_lora_rank is not None and rank > max_lora_rank:
        problems.append(
            f"its LoRA rank {rank} exceeds the server's max_lora_rank {max_lora_rank}; "
            "retrain with a smaller lora_r or raise vllm.max_lora_rank"
        )
    recorded = manifest.get("base_weights_sha256")
    if base_model_hash is not None and recorded != base_model_hash:
        problems.append(
            f"it was trained on base weights {_short(recorded)}, but the served base model's weights "
            f"are {_short(base_model_hash)}"
        )
    if problems:
        raise IncompatibleAdapterError(f"adapter in {adapter_dir} is incompatible: " + "; ".join(problems))


def read_adapter_config(adapter_dir: Path) -> dict[str, Any]:
    """The adapter's PEFT `adapter_config.json`, which every servable adapter has."""
    path = Path(adapter_dir) / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IncompatibleAdapterError(f"{path} is missing: not a PEFT adapter") from None
    except json.JSONDecodeError as exc:
        raise IncompatibleAdapterError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise IncompatibleAdapterError(f"{path} is not a JSON object")
    return config


def adapter_rank(config: dict[str, Any]) -> int:
    """The largest LoRA rank in the adapter: `r`, or a larger per-module rank from `rank_pattern`."""
    ranks = [int(config.get("r") or 0), *(int(r) for r in (config.get("rank_pattern") or {}).values())]
    return max(ranks)


def check_recipe(lora_r: int, base_model: str, settings: Settings) -> None:
    """Before training: refuse a recipe whose adapter the configured server could not serve, rather than
    find out hours later at registration. The gateway serves an adapter only on the base model it names."""
    problems = []
    limit, served = settings.vllm.max_lora_rank, settings.chat_model
    if lora_r > limit:
        problems.append(f"lora_r {lora_r} exceeds the server's vllm.max_lora_rank {limit}")
    if base_model != served:
        problems.append(f"it trains on {base_model!r}, but the server's chat_model is {served!r}")
    if problems:
        raise IncompatibleAdapterError("the recipe's adapter could not be served: " + "; ".join(problems))


def serving_requirements(settings: Settings) -> Requirements:
    """The requirements of the vLLM that `settings` describe (base hash only where the weights are local)."""
    from core.models import ModelNotPulledError, resolve_model
    from training.fingerprint import weights_sha256

    try:
        base = Path(resolve_model(settings.chat_model, settings.cache_dir))
    except ModelNotPulledError as exc:
        log.warning("%s: adapters' base weights are not checked", exc)
        return Requirements(None, settings.vllm.max_lora_rank)
    if not base.is_dir():
        # A hub id that vLLM downloads itself: there are no local weights to hash.
        log.warning("base model %s is not local: adapters' base weights are not checked", settings.chat_model)
        return Requirements(None, settings.vllm.max_lora_rank)
    return Requirements(weights_sha256(base), settings.vllm.max_lora_rank)


def _short(digest: object) -> str:
    return f"{digest[:12]}…" if isinstance(digest, str) else "(not recorded)"
