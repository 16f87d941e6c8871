"""The LoRA fine-tuning recipe: setup → train → save → register, read top to bottom.

A plain PyTorch loop over a PEFT-wrapped causal LM, sized for small models on a CPU. The loss is taken
on assistant tokens only (see `training.data`). Each step's conversations are either length-grouped and
padded (`training.batching`) or packed into shared rows (`training.packing`). The run checkpoints as it
goes and resumes from its last checkpoint (`training.checkpoints`); under `accelerate launch` each process
trains on a shard of every step (`training.distributed`). The result is registered as a new immutable
*candidate* version in the adapter registry; serving picks it up once `lorag adapters promote` (or `lorag
retrain`) has passed it through the promotion gate.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.models import resolve_model
from training.batching import TokenizedExample, collate, length_grouped_batches
from training.checkpoints import TrainingState, checkpoints, load_checkpoint, run_dir, save_checkpoint
from training.compatibility import Requirements
from training.config import DTYPES, TrainConfig, load_config
from training.data import IGNORE_INDEX, Example, tokenize_example
from training.distributed import Processes, current_processes
from training.fingerprint import files_sha256, weights_sha256
from training.packing import collate_packed, pack_rows
from training.registry import AdapterRegistry, AdapterVersion
from training.validate import load_tokenizer, load_training_examples

if TYPE_CHECKING:
    import torch

__all__ = ["TrainConfig", "load_config", "train"]  # the recipe's config is also imported from here

log = logging.getLogger(__name__)

TRAIN_LOG = "train_log.jsonl"
LOSS_CURVE = "loss_curve.png"


def train(
    config: TrainConfig,
    registry_root: Path,
    cache_dir: Path,
    progress: bool = True,
    resume: bool = False,
    work_root: Path | None = None,
    *,
    requirements: Requirements | None = None,
    attachments: Mapping[str, Path] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> AdapterVersion:
    """Fine-tune a LoRA adapter as `config` says and register it as a candidate version.

    Checkpoints go to `<work_root>/<output_name>-<config hash>/` (default `work_root`: `train-runs/` beside
    the registry). With `resume`, the run continues from its last checkpoint there, if any; without, it
    starts afresh. The work directory is removed once the adapter is registered. `requirements` (the
    serving vLLM's rank limit and base weights) are checked at registration. `attachments` (name → file)
    are copied into the version and hashed with it; `fields` go into its manifest (e.g. the eval set it is
    gated on).
    """
    # --- setup
    model_dir = Path(resolve_model(config.base_model, cache_dir))
    # Bad data fails (strict) or is skipped here, before any weights are loaded.
    conversations = load_training_examples(
        config.data_files, load_tokenizer(model_dir), max_length=config.max_length, strict=config.strict
    )
    procs = current_processes()
    seed_everything(config.seed)
    tokenizer, model = load_model(config, model_dir)
    model.to(procs.device)
    examples = tokenize_all(tokenizer, conversations, config.max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    run = run_dir(
        work_root or Path(registry_root).parent / "train-runs",
        config.output_name,
        config.to_dict(),
        files_sha256(config.data_files),
    )
    out = run / "adapter"
    if procs.is_main:
        if not resume:
            shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
    procs.barrier()
    # --- train
    records = train_loop(config, model, examples, pad_id, run, progress, resume, procs)
    # --- save and register (once, by the main process; the others return what it registered)
    if procs.is_main:
        save_adapter(model, config, out)
        plot_loss(records, out / LOSS_CURVE)
        metrics = summarise(records, len(examples))
        for name, source in (attachments or {}).items():
            shutil.copyfile(source, out / name)
        adapter = register(
            config, registry_root, out, model_dir, metrics, requirements=requirements, extra=fields
        )
        shutil.rmtree(run)
    procs.barrier()
    if not procs.is_main:  # the version the main process just registered
        registry = AdapterRegistry(registry_root)
        adapter = registry.get(config.output_name, registry.versions(config.output_name)[-1])
    return adapter


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's generators (LoRA init and dropout draw from torch's)."""
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def load_model(config: TrainConfig, model_dir: Path) -> tuple[Any, Any]:
    """The tokenizer and the base model wrapped with fresh LoRA weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dtype = getattr(torch, DTYPES[config.dtype])
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    base.config.use_cache = False  # no generation during training; the KV cache only costs memory
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    # No modules_to_save: vLLM serves only LoRA weights, so fully trained layers would be silently lost.
    return tokenizer, get_peft_model(base, lora)


def tokenize_all(tokenizer: Any, conversations: Sequence[Example], max_length: int) -> list[TokenizedExample]:
    """Tokenised examples; those whose assistant tokens are all cut off by `max_length` are dropped."""
    examples = []
    for example in conversations:
        input_ids, labels = tokenize_example(tokenizer, example.messages, max_length, example.tools)
        if all(label == IGNORE_INDEX for label in labels):
            log.warning("%s: no assistant token within max_length=%d, skipped", example.source, max_length)
            continue
        examples.append(TokenizedExample(input_ids, labels))
    if not examples:
        raise ValueError(f"no example has an assistant token within max_length={max_length}")
    return examples


def total_steps(config: TrainConfig, n_examples: int) -> int:
    """Optimizer steps in the run: every batch of every epoch, capped by `max_steps`."""
    steps = config.epochs * math.ceil(n_examples / config.batch_size)
    return min(steps, config.max_steps) if config.max_steps else steps


def batch_plan(config: TrainConfig, lengths: Sequence[int]) -> list[tuple[int, list[int]]]:
    """(epoch, example indices) for every step of the run, in order; a pure function of config and data.

    Length-grouped batches, or random ones when packing (packing removes the padding that grouping
    avoids, without making each batch's lengths alike). Either way reshuffled each epoch by `seed`. Being
    deterministic, the plan needs no saving: a resumed run skips the steps its checkpoint has done.
    """
    plan: list[tuple[int, list[int]]] = []
    for epoch in range(config.epochs):
        seed = config.seed + epoch
        if config.packing:
            order = list(range(len(lengths)))
            random.Random(seed).shuffle(order)
            groups = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        else:
            groups = length_grouped_batches(lengths, config.batch_size, seed=seed)
        plan.extend((epoch, group) for group in groups)
    return plan[: total_steps(config, len(lengths))]


def step_batch(
    config: TrainConfig, examples: Sequence[TokenizedExample], pad_id: int, procs: Processes
) -> tuple[list[dict[str, Any]], int]:
    """This process's share of one step's examples as micro-batches (none if it has no share), and its
    real tokens.

    Packed rows (or padded conversations) are dealt out to the processes in turn, then cut into groups
    of `micro_batch_size` (length-grouped conversations stay together, so little padding is added).
    """
    if config.packing:
        rows = pack_rows([len(example.input_ids) for example in examples], config.max_length)
        mine: list = [[examples[i] for i in row] for row in rows[procs.rank :: procs.world]]
        tokens = sum(len(example.input_ids) for row in mine for example in row)
    else:
        mine = list(examples[procs.rank :: procs.world])
        tokens = sum(len(example.input_ids) for example in mine)
    size = config.micro_batch_size or max(len(mine), 1)
    batches = [
        collate_packed(part, pad_id) if config.packing else collate(part, pad_id)
        for part in (mine[i : i + size] for i in range(0, len(mine), size))
    ]
    return [{key: value.to(procs.device) for key, value in batch.items()} for batch in batches], tokens


def make_optimizer(config: TrainConfig, model: Any, steps: int) -> tuple[list, Any, Any]:
    """The trainable (LoRA) parameters, AdamW over them, and a linear-warmup cosine schedule to zero."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * steps), steps)
    return params, optimizer, scheduler


def train_loop(
    config: TrainConfig,
    model: Any,
    examples: Sequence[TokenizedExample],
    pad_id: int,
    run: Path,
    progress: bool,
    resume: bool,
    procs: Processes,
) -> list[dict[str, Any]]:
    """Run the optimizer steps; one record per step goes to `run/adapter/train_log.jsonl` and is returned.

    With `resume`, the weights, optimizer, scheduler, RNG and log are restored from the run's last
    checkpoint and the steps it covers are skipped, so the result is what an uninterrupted run gives.
    """
    from tqdm import tqdm

    plan = batch_plan(config, [len(example.input_ids) for example in examples])
    params, optimizer, scheduler = make_optimizer(config, model, len(plan))
    state = TrainingState(step=0, records=[])
    saved = checkpoints(run)
    if resume and saved:
        state = load_checkpoint(saved[-1], model, optimizer, scheduler, procs.rank)
        log.info("resuming %s from step %d", run.name, state.step)
    model.train()
    records = state.records
    tokens_seen = records[-1]["tokens"] if records else 0
    started = time.perf_counter() - (records[-1]["elapsed_s"] if records else 0.0)
    log_file = (run / "adapter" / TRAIN_LOG).open("w", encoding="utf-8") if procs.is_main else None
    bar = tqdm(total=len(plan), initial=state.step, disable=not (progress and procs.is_main))
    with bar:
        for record in records:
            write_record(log_file, record)
        for step, (epoch, indices) in enumerate(plan[state.step :], start=state.step + 1):
            batches, tokens = step_batch(config, [examples[i] for i in indices], pad_id, procs)
            lr = scheduler.get_last_lr()[0]  # the rate this step uses (the scheduler moves on inside)
            loss = train_step(
                model, batches, optimizer, scheduler, params, config.max_grad_norm, procs, precision(config)
            )
            # Padding costs compute but is not data: only real tokens count towards throughput.
            tokens_seen += int(procs.sum(torch_tensor(tokens)))
            elapsed = time.perf_counter() - started
            record = {
                "step": step,
                "epoch": epoch + 1,
                "loss": loss,
                "lr": lr,
                "tokens": tokens_seen,
                "elapsed_s": round(elapsed, 3),
                "tokens_per_s": round(tokens_seen / elapsed, 1),
            }
            records.append(record)
            write_record(log_file, record)
            bar.update()
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
            if step % config.checkpoint_every == 0 and step < len(plan):
                save_checkpoint(run, TrainingState(step, records), model, optimizer, scheduler, procs)
    if log_file:
        log_file.close()
    return records


def write_record(log_file: Any, record: dict[str, Any]) -> None:
    """Append one step's record to the JSONL log (flushed, so a killed run's log is complete)."""
    if log_file is not None:
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()


def torch_tensor(value: float) -> torch.Tensor:
    import torch

    return torch.tensor(float(value))


def train_step(
    model: Any,
    batches: Sequence[dict[str, torch.Tensor]],
    optimizer: Any,
    scheduler: Any,
    params: list,
    max_norm: float,
    procs: Processes,
    precision: str | None = None,
) -> float:
    """One update from this process's micro-batches and the other processes'; returns the step's mean
    loss on assistant tokens.

    Each micro-batch's summed loss is divided by the assistant-token count of the whole step (all
    micro-batches of all processes) and the gradients are accumulated, then summed over processes: the
    gradient of the mean over the step however it is sharded or cut. `precision`: see `mixed_precision`.
    """
    import torch

    targets = sum(int((batch["labels"][:, 1:] != IGNORE_INDEX).sum()) for batch in batches)
    total = procs.sum(torch_tensor(targets))
    loss_sum = torch.zeros(())
    for batch in batches:
        with mixed_precision(model, precision):
            part = token_loss_sum(model, batch)
        (part / total).backward()
        loss_sum = loss_sum + part.detach().float().cpu()
    procs.sum_gradients(params)
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(procs.sum(loss_sum) / total)


def precision(config: TrainConfig) -> str | None:
    """The autocast dtype of the forward passes: "bfloat16" for bf16 base weights with `autocast`, else
    None (every op in its weights' dtype)."""
    return "bfloat16" if config.autocast and DTYPES[config.dtype] == "bfloat16" else None


@contextmanager
def mixed_precision(model: Any, dtype: str | None) -> Iterator[None]:
    """Forward passes under torch autocast to `dtype`, with PEFT's upcast of layer inputs to the LoRA
    weights' float32 turned off (autocast casts the small LoRA weights down instead). No-op for None."""
    if dtype is None:
        yield
        return
    import torch
    from peft.helpers import disable_input_dtype_casting

    device = next(model.parameters()).device.type
    with torch.autocast(device, dtype=getattr(torch, dtype)), disable_input_dtype_casting(model):
        yield


def assistant_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled (assistant) tokens, as `model(labels=...)` gives it."""
    return token_loss_sum(model, batch) / (batch["labels"][:, 1:] != IGNORE_INDEX).sum()


def token_loss_sum(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed next-token cross-entropy over the labelled (assistant) tokens of a padded or packed batch.

    Logits are computed only for the hidden states whose next token is labelled. Most positions are
    prompt or retrieved context, and projecting all of them onto the vocabulary (49k for SmolLM2) and
    through a float32 softmax costs a third of a CPU step or more on long examples. So the decoder and the
    output layer are called separately (LoRA lives inside the decoder's layers, so nothing is skipped).
    """
    import torch.nn.functional as F

    lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wraps the LM
    inputs = {key: batch[key] for key in ("input_ids", "attention_mask", "position_ids") if key in batch}
    hidden = lm.get_decoder()(**inputs).last_hidden_state[:, :-1]
    targets = batch["labels"][:, 1:]
    where = (targets != IGNORE_INDEX).nonzero(as_tuple=True)
    logits = lm.get_output_embeddings()(hidden[where])
    return F.cross_entropy(logits.float(), targets[where], reduction="sum")


def save_adapter(model: Any, config: TrainConfig, out: Path) -> None:
    """Write the LoRA weights (safetensors) and adapter config that vLLM and PEFT load."""
    # The config records the model *reference*, not this machine's cache path.
    model.peft_config["default"].base_model_name_or_path = config.base_model
    # Embeddings are never trained here (and vLLM would not serve them); saying so also stops PEFT from
    # looking the reference up on the hub to compare vocabulary sizes.
    model.save_pretrained(out, safe_serialization=True, save_embedding_layers=False)


def plot_loss(records: Sequence[dict[str, Any]], path: Path) -> None:
    """Save the per-step loss curve as a PNG (no display needed: a bare Figure renders with Agg)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axes = figure.subplots()
    axes.plot([r["step"] for r in records], [r["loss"] for r in records])
    axes.set(xlabel="step", ylabel="loss (assistant tokens)", title="training loss")
    axes.grid(alpha=0.3)
    figure.savefig(path, dpi=100)


def summarise(records: Sequence[dict[str, Any]], n_examples: int) -> dict[str, Any]:
    """The run's metrics for the manifest."""
    last = records[-1]
    tail = [r["loss"] for r in records[-10:]]
    return {
        "final_loss": last["loss"],
        "final_loss_mean10": sum(tail) / len(tail),
        "steps": last["step"],
        "epochs": last["epoch"],
        "examples": n_examples,
        "tokens": last["tokens"],
        "train_seconds": last["elapsed_s"],
        "tokens_per_s": last["tokens_per_s"],
    }


def register(
    config: TrainConfig,
    registry_root: Path,
    out: Path,
    model_dir: Path,
    metrics: dict[str, Any],
    *,
    requirements: Requirements | None = None,
    extra: Mapping[str, Any] | None = None,
) -> AdapterVersion:
    """Register the adapter as a new candidate version with its provenance (and `extra` manifest fields);
    `current` is not moved."""
    registry = AdapterRegistry(registry_root)
    parent = registry.current(config.output_name)  # the served version this one is meant to replace
    fields = {
        "base_model": config.base_model,
        "base_weights_sha256": weights_sha256(model_dir),
        "data_sha256": files_sha256(config.data_files),
        "config": config.to_dict(),
        "metrics": metrics,
        "parent": parent.version if parent else None,
        **(extra or {}),
    }
    return registry.register(config.output_name, out, fields, requirements=requirements)
