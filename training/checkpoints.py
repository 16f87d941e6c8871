"""Checkpoints of a training run, so a run that was killed resumes where it left off.

A run's work directory is named after the adapter and a hash of its config and data, so the same run
started again (in any process, on any day) finds its own checkpoints, and a changed config or data file
never resumes from a stale one. A checkpoint holds everything that the rest of the run depends on: the LoRA
weights, the optimizer and scheduler state, every process's RNG state (dropout draws from it), and the step
reached, which fixes the position in the (deterministic) batch order and the per-step log so far.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.distributed import Processes

KEEP = 2
"""Checkpoints kept; the older ones are deleted once a newer one is complete."""
PREFIX = "step-"


def run_dir(work_root: Path, output_name: str, config: dict[str, Any], data_sha256: str) -> Path:
    """`<work_root>/<output_name>-<hash>`: the same for every start of the same run, and only for it."""
    key = json.dumps({"config": config, "data_sha256": data_sha256}, sort_keys=True, default=str)
    return Path(work_root) / f"{output_name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


@dataclass
class TrainingState:
    """What a checkpoint restores besides the tensors: the step reached and the log up to it."""

    step: int
    records: list[dict[str, Any]]


def checkpoints(run: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (half-written ones end in `.tmp` and are skipped)."""
    found = [p for p in (run / "checkpoints").glob(f"{PREFIX}*") if p.name[len(PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def save_checkpoint(
    run: Path, state: TrainingState, model: Any, optimizer: Any, scheduler: Any, procs: Processes
) -> None:
    """Write `checkpoints/step-N/` atomically (staged, then renamed) and keep only the last `KEEP`.

    Every process saves its own RNG state; the main process saves the rest. All processes must call this.
    """
    import torch

    final = run / "checkpoints" / f"{PREFIX}{state.step}"
    staged = final.with_name(final.name + ".tmp")
    if procs.is_main:
        shutil.rmtree(staged, ignore_errors=True)  # left over from a run killed while saving
        staged.mkdir(parents=True)
    procs.barrier()
    torch.save(rng_state(), staged / f"rng-{procs.rank}.pt")
    procs.barrier()
    if procs.is_main:
        trainable = {name: p.detach().cpu() for name, p in model.named_parameters() if p.requires_grad}
        torch.save(trainable, staged / "trainable.pt")
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, staged / "optim.pt"
        )
        (staged / "state.json").write_text(json.dumps(state.__dict__), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        staged.rename(final)
        for old in checkpoints(run)[:-KEEP]:
            shutil.rmtree(old)
    procs.barrier()


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, rank: int) -> TrainingState:
    """Restore a checkpoint into the model, optimizer, scheduler and this process's RNG."""
    import torch

    trainable = torch.load(path / "trainable.pt", weights_only=True)
    params = dict(model.named_parameters())
    missing = {name for name, p in params.items() if p.requires_grad} ^ set(trainable)
    if missing:
        raise ValueError(f"{path}: trainable parameters differ from the model's: {sorted(missing)[:5]}")
    with torch.no_grad():
        for name, value in trainable.items():
            params[name].copy_(value)
    optim = torch.load(path / "optim.pt", weights_only=True)
    optimizer.load_state_dict(optim["optimizer"])
    scheduler.load_state_dict(optim["scheduler"])
    rng = path / f"rng-{rank}.pt"
    set_rng_state(torch.load(rng if rng.exists() else path / "rng-0.pt", weights_only=False))
    return TrainingState(**json.loads((path / "state.json").read_text(encoding="utf-8")))


def rng_state() -> dict[str, Any]:
    """The generators training draws from: Python's and torch's (CPU, and CUDA when present)."""
    import torch

    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
