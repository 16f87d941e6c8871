"""`lorag bench serve`'s extra rows: a long prompt's first token on an adapter route, the price of enabling
LoRA on the server, and the gateway's own CPU time per request.

- Long prompt: one ~1.5K-token prompt, `max_tokens=1`, sent alone to the gateway's `base` and `demo`
  routes in turn (`repeats` times each); the median time to the first token of each, and their ratio.
  Target: demo <= 1.5x base. On CPU the adapter's prefill used to dominate RAG prompts on adapter routes.
- The price of LoRA: vLLM with `--enable-lora` changes how it runs the base model too (on CPU it leaves
  compiled paths off), so the same load is sent to a vLLM started without it, and compared with (a).
- Gateway CPU: the gateway process's user + system CPU seconds over a pass, per request — vLLM, the
  gateway and the load generator share the cores, so what the gateway burns is taken from vLLM.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import PassMetrics, StreamResult, Target, run_load, stream_one
from core.settings import Settings

LONG_PROMPT_TOKENS = 1500
LONG_PROMPT_TARGET = 1.5
"""demo / base median TTFT of the long prompt."""


def long_prompt(corpus_dir: Path, words: int = 1100) -> str:
    """About `LONG_PROMPT_TOKENS` tokens of the demo corpus (~1.35 SmolLM2 tokens a word), then a question:
    the shape of a RAG prompt without retrieval, so both routes prefill exactly the same text."""
    text = " ".join(
        path.read_text(encoding="utf-8") for path in sorted(corpus_dir.rglob("*.md")) if path.is_file()
    ).split()
    while len(text) < words:
        text = text + text
    return " ".join(text[:words]) + "\n\nIn one word: which product is mentioned first above?"


@dataclass(frozen=True)
class LongPromptResult:
    """Median first-token times of the long prompt per route, and what was sent."""

    ttft_ms: dict[str, float]
    samples_ms: dict[str, list[float]]
    prompt_tokens: int | None
    errors: list[str]

    def ratio(self, route: str, baseline: str) -> float:
        return self.ttft_ms[route] / self.ttft_ms[baseline]


async def time_long_prompt(
    targets: list[Target],
    prompt: str,
    repeats: int = 5,
    prompt_tokens: int | None = None,
) -> LongPromptResult:
    """Each target answers `prompt` with one token, one request at a time, interleaved `repeats` times."""
    samples: dict[str, list[float]] = {target.label: [] for target in targets}
    errors: list[str] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0)) as client:
        for target in targets:  # warm-up: the adapter's first load, and the prefix cache is not used twice
            await stream_one(client, target, _body(target.model, prompt, salt="warm"))
        for repeat in range(repeats):
            for target in targets:
                # A different first word each time: vLLM's prefix cache must not serve the prefill.
                result: StreamResult = await stream_one(client, target, _body(target.model, prompt, repeat))
                if result.error or result.ttft_s is None:
                    errors.append(f"{target.label}: {result.error or 'no content'}")
                else:
                    samples[target.label].append(result.ttft_s * 1000)
    medians = {label: statistics.median(values) for label, values in samples.items() if values}
    return LongPromptResult(medians, samples, prompt_tokens, errors)


def _body(model: str, prompt: str, salt: object) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"({salt}) {prompt}"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 1,
        "temperature": 0,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process (all its threads, living or exited) has used, to the
    nanosecond: its Linux CPU-time clock (`clock_getcpuclockid`, spelled out: Python has no binding).

    `/proc/<pid>/stat` counts in 10 ms ticks, which rounded a quick pass's few milliseconds to zero.
    """
    return time.clock_gettime(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of process `pid`


async def pass_with_cpu(
    target: Target, pid: int | None, prompts: tuple[str, ...], clients: int, per_client: int, max_tokens: int
) -> tuple[PassMetrics, float | None]:
    """`run_load`, and the CPU milliseconds process `pid` spent per request during it (None: no pid)."""
    before = cpu_seconds(pid) if pid else None
    metrics = await run_load(target, prompts, clients, per_client, max_tokens)
    if pid is None or before is None or not metrics.requests:
        return metrics, None
    return metrics, (cpu_seconds(pid) - before) * 1000 / metrics.requests


@dataclass(frozen=True)
class LoraPrice:
    """Base-model throughput and TTFT of a vLLM without `--enable-lora`, over `passes` passes."""

    output_tok_s: list[float]
    ttft_p50_ms: list[float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_without_lora(
    settings: Settings,
    port: int,
    log: Path,
    prompts: tuple[str, ...],
    clients: int,
    per_client: int,
    max_tokens: int,
    passes: int,
    out: Callable[[str], object],
) -> LoraPrice:
    """Start vLLM without LoRA, send the direct load `passes` times (after one warm-up), stop it."""
    from core.models import resolve_model
    from core.vllm_server import ManagedVLLM

    config = settings.vllm.model_copy(update={"port": port, "enable_lora": False})
    vllm = ManagedVLLM(
        resolve_model(settings.chat_model, settings.cache_dir), settings.chat_model, config, log
    )
    vllm.start()
    try:
        vllm.wait_healthy()
        target = Target("(a0) vLLM direct, no LoRA", vllm.url, settings.chat_model, vllm.api_key)
        asyncio.run(run_load(target, prompts, 1, 1, 4))
        tok_s, ttft = [], []
        for number in range(passes):
            metrics = asyncio.run(run_load(target, prompts, clients, per_client, max_tokens))
            tok_s.append(metrics.output_tok_s)
            ttft.append(metrics.ttft_p50_ms)
            out(f"  without LoRA {number + 1}/{passes}: {metrics.output_tok_s:.1f} tok/s")
        return LoraPrice(tok_s, ttft)
    finally:
        vllm.stop()


async def long_prompt_rows(base: Target, demo: Target, corpus_dir: Path) -> LongPromptResult:
    """The long prompt on the gateway's base and adapter routes, with its real prompt-token count."""
    prompt = long_prompt(corpus_dir)
    async with httpx.AsyncClient(timeout=600) as client:
        reply = await client.post(
            f"{base.url}/v1/chat/completions",
            json={"model": base.model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 1},
        )
    tokens = reply.json().get("usage", {}).get("prompt_tokens") if reply.status_code == 200 else None
    return await time_long_prompt([base, demo], prompt, prompt_tokens=tokens)


def extra_lines(results: dict[str, Any], direct: str, base: str, demo: str) -> list[str]:
    """The verdict's long-prompt check and the price of LoRA (`direct`, `base`, `demo`: target labels)."""
    lines = []
    long = results.get("long_prompt")
    if long and base in long["ttft_ms"] and demo in long["ttft_ms"]:
        base_ms, demo_ms = long["ttft_ms"][base], long["ttft_ms"][demo]
        ratio = demo_ms / base_ms
        outcome = "met" if ratio <= LONG_PROMPT_TARGET else "MISSED"
        lines.append(
            f"  long prompt ({long['prompt_tokens']} prompt tokens, max_tokens=1, median of "
            f"{len(long['samples_ms'][base])}): demo {demo_ms:.0f} ms vs base {base_ms:.0f} ms = "
            f"{ratio:.2f}x, target <= {LONG_PROMPT_TARGET:.1f}x ({outcome})"
        )
    price, with_lora = results.get("without_lora"), results["summary"].get(direct)
    if price and with_lora:
        tok, ttft = statistics.median(price["output_tok_s"]), statistics.median(price["ttft_p50_ms"])
        with_tok, with_ttft = with_lora["output_tok_s"]["median"], with_lora["ttft_p50_ms"]["median"]
        lines.append(
            f"  price of --enable-lora: base on a server without LoRA {tok:.1f} tok/s, TTFT p50 "
            f"{ttft:.0f} ms; with LoRA enabled (a) {with_tok:.1f} tok/s ({with_tok / tok:.2f}x), "
            f"TTFT p50 {with_ttft:.0f} ms"
        )
    return lines
