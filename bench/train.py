"""`lorag bench train`: the recipe's training throughput against plain PEFT + `transformers.Trainer`.

Each system trains the same LoRA on the same demo conversations (same tokenisation and assistant-only
labels, batch size, steps, learning-rate schedule and base dtype) in a fresh subprocess, so peak memory
is each one's own. The baseline is what one writes without a recipe: `Trainer` with dynamic padding
(`DataCollatorForSeq2Seq`) and length-grouped sampling; a second row adds Trainer's `bf16=True`.
Throughput counts real tokens only: padding costs compute but is not data. The recipe's row also
reports its eval loss on held-out conversations computed packed and padded: they agree only if no
token attends across the examples packed into one row.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.settings import DEFAULT_CHAT_MODEL
from training.demo_data import DEMO_TRAIN_FILE

SYSTEMS = (
    "recipe (length-grouped)",
    "recipe (packed)",
    "peft + Trainer (baseline)",
    "peft + Trainer, bf16=True",
)
"""The recipe twice, the baseline, and the baseline with Trainer's own mixed precision (`bf16=True`, which
autocasts as the recipe does): the recipe's gain is shown against both."""
HELD_OUT = 32
"""Conversations at the end of the demo file kept out of training for the eval loss."""


def run_train_bench(
    cache_dir: Path, out: Callable[[str], None], quick: bool = False, steps: int = 20
) -> list:
    """Print one table: per model and system, real tokens/s, speed-up over the baseline, peak RSS, losses."""
    from core.models import resolve_model

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lorag-bench-train-") as work:
        tiny = build_tiny_llama(Path(work) / "tiny", Path(resolve_model(DEFAULT_CHAT_MODEL, cache_dir)))
        models = [("tiny (2 layers)", str(tiny), 4 if quick else 30)]
        if not quick:
            models.append((DEFAULT_CHAT_MODEL, DEFAULT_CHAT_MODEL, steps))
        for label, model, model_steps in models:
            results = {
                system: run_worker(system, model, model_steps, cache_dir, Path(work)) for system in SYSTEMS
            }
            base = results[SYSTEMS[2]]["tokens_per_s"]
            rows.extend({"model": label, "system": s, **r, "speedup": r["tokens_per_s"] / base}
                        for s, r in results.items())  # fmt: skip
    for line in format_table(rows):
        out(line)
    return rows


def format_table(rows: list[dict[str, Any]]) -> list[str]:
    """The table's lines: one row per model and system."""
    head = f"{'model':22} {'system':26} {'steps':>5} {'tok/s':>8} {'x base':>6} {'peak RSS':>9} {'loss':>7}"
    lines = [head + f" {'eval loss packed / padded':>27}", "-" * (len(head) + 28)]
    for r in rows:
        evals = f"{r['eval_packed']:.4f} / {r['eval_padded']:.4f}" if "eval_packed" in r else "-"
        lines.append(
            f"{r['model']:22} {r['system']:26} {r['steps']:>5} {r['tokens_per_s']:>8.0f} "
            f"{r['speedup']:>5.2f}x {r['peak_rss_mb']:>7.0f}MB {r['final_loss']:>7.3f} {evals:>27}"
        )
    return lines


def run_worker(system: str, model: str, steps: int, cache_dir: Path, work: Path) -> dict[str, Any]:
    """One system's measurement in a fresh Python process; its last output line is the JSON result."""
    job = {"system": system, "model": model, "steps": steps, "cache_dir": str(cache_dir), "work": str(work)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.train", json.dumps(job)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{system} on {model} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_tiny_llama(path: Path, tokenizer_dir: Path) -> Path:
    """A randomly initialised 2-layer, 64-wide Llama with SmolLM2's tokenizer (the unit tests' model)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=128, max_position_embeddings=1024, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(path)  # type: ignore[arg-type]
    tokenizer.save_pretrained(path)
    return path


def bench_config(model: str, steps: int, packing: bool) -> Any:
    """The shared training setup: the demo recipe's LoRA and optimiser, cut to `steps` steps."""
    from training.recipe import TrainConfig

    return TrainConfig(
        output_name="bench", base_model=model, data_files=[DEMO_TRAIN_FILE], max_steps=steps,
        batch_size=8, max_length=512, packing=packing, checkpoint_every=10_000, dtype="bfloat16",
    )  # fmt: skip


def prepare(job: dict[str, Any], packing: bool) -> tuple[Any, Any, Any, list, list, int]:
    """Config, tokenizer, LoRA model, training and held-out examples and pad id, as the recipe has them."""
    from core.models import resolve_model
    from training.data import read_all
    from training.recipe import load_model, seed_everything, tokenize_all

    config = bench_config(job["model"], job["steps"], packing)
    seed_everything(config.seed)
    tokenizer, model = load_model(config, Path(resolve_model(config.base_model, Path(job["cache_dir"]))))
    examples = tokenize_all(tokenizer, read_all(config.data_files), config.max_length)
    pad_id = tokenizer.pad_token_id
    return config, tokenizer, model, examples[:-HELD_OUT], examples[-HELD_OUT:], pad_id


def recipe_worker(job: dict[str, Any], packing: bool) -> dict[str, Any]:
    """Train with the recipe's loop; measure, then evaluate held-out loss packed and padded."""
    from training.distributed import current_processes
    from training.recipe import train_loop

    config, _, model, train_set, held_out, pad_id = prepare(job, packing)
    run = Path(tempfile.mkdtemp(dir=job["work"]))
    (run / "adapter").mkdir()
    records = train_loop(config, model, train_set, pad_id, run, False, False, current_processes())
    last = records[-1]
    packed, padded = eval_losses(model, held_out, pad_id, config.max_length)
    return {"steps": last["step"], "tokens_per_s": last["tokens_per_s"], "final_loss": last["loss"],
            "eval_packed": packed, "eval_padded": padded}  # fmt: skip


def eval_losses(model: Any, examples: list, pad_id: int, max_length: int) -> tuple[float, float]:
    """Mean assistant-token loss over `examples`, computed in packed rows and in padded batches of 8."""
    import torch

    from training.batching import collate
    from training.packing import collate_packed, pack_rows
    from training.recipe import token_loss_sum

    rows = [[examples[i] for i in row] for row in pack_rows([len(e.input_ids) for e in examples], max_length)]
    targets = sum(sum(label != -100 for label in e.labels[1:]) for e in examples)
    model.eval()
    with torch.no_grad():
        packed = sum(float(token_loss_sum(model, collate_packed(rows[i : i + 4], pad_id)))
                     for i in range(0, len(rows), 4))  # fmt: skip
        padded = sum(float(token_loss_sum(model, collate(examples[i : i + 8], pad_id)))
                     for i in range(0, len(examples), 8))  # fmt: skip
    return packed / targets, padded / targets


def baseline_worker(job: dict[str, Any], bf16: bool = False) -> dict[str, Any]:
    """Plain PEFT + `transformers.Trainer`: dynamic padding, length-grouped sampling, same LoRA, schedule;
    with `bf16`, Trainer's mixed precision (autocast) on top."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    config, tokenizer, model, train_set, _, _ = prepare(job, packing=False)
    precision: dict[str, Any] = {"bf16": True, "use_cpu": not torch.cuda.is_available()} if bf16 else {}
    dataset = [{"input_ids": e.input_ids, "labels": e.labels} for e in train_set]
    pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    real_tokens = []

    def collator(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = pad(features)
        real_tokens.append(int(batch["attention_mask"].sum()))
        return batch

    args = TrainingArguments(
        output_dir=str(Path(job["work"]) / "trainer"), per_device_train_batch_size=config.batch_size,
        max_steps=config.max_steps, learning_rate=config.learning_rate, lr_scheduler_type="cosine",
        warmup_steps=math.ceil(config.warmup_ratio * config.max_steps), weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        train_sampling_strategy="group_by_length", logging_steps=1, save_strategy="no", report_to=[],
        disable_tqdm=True, remove_unused_columns=False, seed=config.seed, dataloader_num_workers=0,
        # Trainer refuses bf16 on a CPU unless told it is one; the plain baseline is left as users write it.
        **precision,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    started = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"steps": trainer.state.global_step, "tokens_per_s": sum(real_tokens) / elapsed,
            "final_loss": losses[-1]}  # fmt: skip


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """Run one system and add this process's peak resident memory."""
    if job["system"] in SYSTEMS[2:]:
        result = baseline_worker(job, bf16=job["system"] == SYSTEMS[3])
    else:
        result = recipe_worker(job, packing=job["system"] == SYSTEMS[1])
    # ru_maxrss is in KiB on Linux: the peak of this process alone, which is why each system gets one.
    return {**result, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    print(json.dumps(worker(json.loads(sys.argv[1]))))
