"""`lorag bench serve`: what the gateway costs on top of vLLM, printed as one table.

The same load (N concurrent streaming clients, fixed prompts, `ignore_eos`, a fixed number of output
tokens) is sent, interleaved `repeats` times, to
  (a) the vLLM server directly, (b) the gateway's `base` route (no retrieval), (c) its `base+rag` route
  (retrieval always, k=1) and (d) its `demo` route (the LoRA adapter),
and compared with the retrieval time alone (the same prompts searched in-process) and (e) one Hugging Face
`generate()` stream of the same model. Targets: (b) >= 0.95x (a) throughput and TTFT p50 within +20 ms of
(a); (c) at most retrieval p50 + 10 ms above (b).

The bench always prepares its own lorag home in a temporary folder (the demo index and the shipped demo
adapter, as `lorag demo prepare` does, with the default routes), so runs compare like with like whatever
the user's home holds; models, the cache and vLLM options come from the settings. It starts one vLLM (or
uses `vllm_url`) and one gateway, as a separate process so that the load generator does not share its GIL.
`quick=True` runs a tiny load once, without the HF stream, so an end-to-end test covers all of it.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import serve_report as report
from bench.hf_generate import hf_generate
from bench.loadgen import Target, run_load
from bench.serve_extras import (
    LONG_PROMPT_TOKENS,
    extra_lines,
    long_prompt_rows,
    measure_without_lora,
    pass_with_cpu,
)
from core.models import resolve_model
from core.processes import free_ports, start_lorag, stop_process, wait_healthy
from core.settings import Settings, default_routes
from core.stats import percentile
from core.vllm_server import ManagedVLLM
from retrieval.build import DEMO_CORPUS

DIRECT, GATEWAY, RAG, LORA = "(a) vLLM direct", "(b) gateway base", "(c) gateway base+rag", "(d) gateway demo"
HF = "(e) HF generate, 1 stream"
ROLES = {"direct": DIRECT, "gateway": GATEWAY, "rag": RAG, "lora": LORA}
PROMPTS = (
    "How much is the Hollowpeak jacket?",
    "What does the long-length Sunmoth sleeping bag cost?",
    "What's the price of the Tidewick Pro headlamp?",
    "How many Tidewick headlamps are in the Dunmere warehouse?",
    "Within how many days can unused items be returned?",
    "How long do refunds take after the returns centre receives an item?",
    "Which products were recalled in November 2026?",
    "What caused the October 2026 warehouse delay?",
)
"""Fixed prompts about the demo corpus, so that (c) retrieves real chunks; client i sends prompt i mod 8."""
GATEWAY_START_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Load:
    """The load of one pass, and how many interleaved repeats."""

    clients: int
    """Concurrent closed-loop clients."""
    max_tokens: int
    """Output tokens per request (`ignore_eos`, so every request produces exactly this many)."""
    requests_per_client: int
    """Requests each client sends one after another in a pass."""
    repeats: int
    """Interleaved rounds over all targets."""


QUICK = Load(clients=2, max_tokens=8, requests_per_client=1, repeats=1)


def run_serve_bench(
    settings: Settings,
    *,
    clients: int = 16,
    max_tokens: int = 128,
    repeats: int = 3,
    requests_per_client: int = 4,
    quick: bool = False,
    vllm_url: str | None = None,
    vllm_api_key: str | None = None,
    json_path: Path | None = None,
    port_range: tuple[int, int] | None = None,
    out: Callable[[str], object] = print,
) -> dict[str, Any]:
    """Run the benchmark, print its table and verdict with `out`, and return the results.

    With `json_path` the results are also written there as JSON, with a bar chart beside it (`.png`).
    `vllm_url`/`vllm_api_key` reuse a running vLLM instead of starting one; `port_range` (inclusive)
    confines the ports the bench listens on.
    """
    load = QUICK if quick else Load(clients, max_tokens, requests_per_client, repeats)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lorag-bench-serve-") as scratch:
        bench_settings, embedder = prepare_home(settings, Path(scratch) / "home")
        out(f"prepared the demo home in {time.perf_counter() - began:.0f} s; timing retrieval")
        retrieval = time_retrieval(bench_settings, embedder, PROMPTS)
        del embedder  # the gateway loads its own
        without_lora = None
        if not quick and vllm_url is None:
            out("the price of LoRA: the direct load on a vLLM started without --enable-lora")
            [port] = free_ports(settings.host, 1, port_range)
            without_lora = measure_without_lora(
                bench_settings, port, Path(scratch) / "vllm-no-lora.log", PROMPTS, load.clients,
                load.requests_per_client, load.max_tokens, load.repeats, out,
            )  # fmt: skip
        with running_stack(bench_settings, Path(scratch), vllm_url, vllm_api_key, port_range) as stack:
            targets, gateway_pid = stack
            out(f"servers up; {load.repeats} x {len(targets)} passes of {_describe(load)}")
            passes = asyncio.run(interleaved(targets, load, out, gateway_pid))
            long = None
            if not quick:
                out(f"a {LONG_PROMPT_TOKENS}-token prompt, max_tokens=1, base and demo in turn")
                by_label = {target.label: target for target in targets}
                corpus = bench_settings.corpus_dir or DEMO_CORPUS
                long = asyncio.run(long_prompt_rows(by_label[GATEWAY], by_label[LORA], corpus))
        hf = None if quick else hf_generate(bench_settings, PROMPTS[0], load.max_tokens)
    results = _results(bench_settings, load, passes, retrieval, hf, time.perf_counter() - began)
    results["long_prompt"] = asdict(long) if long else None
    results["without_lora"] = without_lora.as_dict() if without_lora else None
    out(render(results))
    if json_path is not None:
        report.write_json(json_path, results)
        plot = json_path.with_suffix(".png")
        report.write_plot(plot, report.summarize_passes(passes), {HF: hf} if hf else {})
        out(f"wrote {json_path} and {plot}")
    return results


def render(results: dict[str, Any]) -> str:
    """The table, then the verdict block."""
    passes, retrieval = results["passes"], results["retrieval"]
    extra = {HF: results["hf_generate"]} if results.get("hf_generate") else {}
    lines = [report.format_table(report.summarize_passes(passes), extra), "", "verdict:"]
    lines += [f"  {check.line()}" for check in report.verdict(passes, ROLES, retrieval["p50_ms"])]
    lines += [f"  {check.line()}" for check in report.lora_checks(passes, ROLES)]
    if waves := report.wave_line(passes, DIRECT, GATEWAY):
        lines.append(waves)
    lines += extra_lines(results, DIRECT, GATEWAY, LORA)
    lines.append(
        f"  retrieval alone: p50 {retrieval['p50_ms']:.1f} ms, p99 {retrieval['p99_ms']:.1f} ms "
        f"(k={retrieval['k']}, {retrieval['searches']} searches in-process); (c) also prefills the longer "
        "prompt that the retrieved source makes"
    )
    lines.append(f"  load: {_describe(Load(**results['load']))}; wall time {results['wall_s']:.0f} s")
    return "\n".join(lines)


def _describe(load: Load) -> str:
    return (
        f"{load.clients} clients x {load.requests_per_client} requests x {load.max_tokens} tokens, "
        f"{load.repeats} repeats"
    )


def _results(
    settings: Settings,
    load: Load,
    passes: dict[str, list[dict[str, Any]]],
    retrieval: dict[str, Any],
    hf: dict[str, float] | None,
    wall_s: float,
) -> dict[str, Any]:
    return {
        "model": settings.chat_model,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load": asdict(load),
        "passes": passes,
        "summary": {
            label: {key: asdict(spread) for key, spread in metrics.items()}
            for label, metrics in report.summarize_passes(passes).items()
        },
        "retrieval": retrieval,
        "hf_generate": hf,
        "verdict": [asdict(check) for check in report.verdict(passes, ROLES, retrieval["p50_ms"])],
        "wall_s": wall_s,
    }


# --- setup ---------------------------------------------------------------------------------------------


def prepare_home(settings: Settings, home: Path) -> tuple[Settings, Any]:
    """`settings` pointed at a fresh home holding the demo index and the registered demo adapter, with the
    default routes, no gateway keys (it listens on loopback) and no external vLLM of the user's; and the
    loaded embedder."""
    from retrieval.build import refresh
    from retrieval.embedders import load_embedder
    from training.demo_adapter import register_demo_adapter

    bench = settings.model_copy(
        update={
            "home": home,
            "routes": default_routes(),
            "api_keys": [],
            "host": "127.0.0.1",
            "vllm_url": None,
            "vllm_api_key": None,
            "refresh_every_s": None,
            "corpus_dir": None,
        }
    )
    embedder = load_embedder(bench.embedder, bench.cache_dir)
    refresh(bench, False, embedder)
    register_demo_adapter(bench.adapters_dir, bench.cache_dir)
    return bench, embedder


def time_retrieval(
    settings: Settings, embedder: Any, prompts: Sequence[str], rounds: int = 5
) -> dict[str, Any]:
    """p50/p99 of the `base+rag` route's search (query embedding included), as the gateway runs it."""
    from retrieval.search import open_retriever
    from serving.routing import search_options

    route = settings.routes["base+rag"]
    retriever = open_retriever(settings.index_dir, embedder)
    options = search_options(route)
    try:
        retriever.search(prompts[0], route.k, **options)  # loads the model and warms it up
        times = []
        for _ in range(rounds):
            for prompt in prompts:
                started = time.perf_counter()
                retriever.search(prompt, route.k, **options)
                times.append(time.perf_counter() - started)
    finally:
        retriever.close()
    return {
        "p50_ms": percentile(times, 50) * 1000,
        "p99_ms": percentile(times, 99) * 1000,
        "k": route.k,
        "searches": len(times),
    }


@contextmanager
def running_stack(
    settings: Settings,
    scratch: Path,
    vllm_url: str | None,
    vllm_api_key: str | None,
    port_range: tuple[int, int] | None,
) -> Iterator[tuple[list[Target], int]]:
    """vLLM (managed unless `vllm_url`) and a gateway in front of it; yields the four targets and the
    gateway's pid (for its CPU time)."""
    vllm_port, gateway_port = free_ports(settings.host, 2, port_range)
    with ExitStack() as stack:
        if vllm_url is None:
            vllm = _start_vllm(settings, vllm_port, scratch / "vllm.log")
            stack.callback(vllm.stop)
            vllm.wait_healthy()
            vllm_url, vllm_api_key, base_model = vllm.url, vllm.api_key, settings.chat_model
        else:
            base_model = _served_base_model(vllm_url, vllm_api_key, settings.chat_model)
        gateway = _start_gateway(settings, gateway_port, vllm_url, vllm_api_key, scratch)
        stack.callback(stop_process, gateway)
        gateway_url = f"http://{settings.host}:{gateway_port}"
        wait_healthy(gateway_url, gateway, scratch / "gateway.log", GATEWAY_START_TIMEOUT_S)
        yield (
            [
                Target(DIRECT, vllm_url, base_model, vllm_api_key),
                Target(GATEWAY, gateway_url, "base"),
                Target(RAG, gateway_url, "base+rag"),
                Target(LORA, gateway_url, "demo"),
            ],
            gateway.pid,
        )


def _start_vllm(settings: Settings, port: int, log: Path) -> ManagedVLLM:
    model_path = resolve_model(settings.chat_model, settings.cache_dir)
    config = settings.vllm.model_copy(update={"port": port})
    vllm = ManagedVLLM(model_path, settings.chat_model, config, log)
    vllm.start()
    return vllm


def _served_base_model(url: str, api_key: str | None, preferred: str) -> str:
    from serving.serve import discover_base_model
    from serving.upstream import VLLMClient

    async def discover() -> str:
        client = VLLMClient(url, api_key)
        try:
            return await discover_base_model(client, preferred)
        finally:
            await client.aclose()

    return asyncio.run(discover())


def _start_gateway(
    settings: Settings, port: int, vllm_url: str, vllm_api_key: str | None, scratch: Path
) -> subprocess.Popen[bytes]:
    """`lorag serve` on `port` against `vllm_url`, configured by a YAML copy of `settings`.

    LORAG_* variables are left out of its environment: they were already read into `settings`, and they
    would outrank the YAML file in the child.
    """
    config = scratch / "lorag.yaml"
    dumped = settings.model_copy(update={"port": port}).model_dump(mode="json", exclude_none=True)
    config.write_text(yaml.safe_dump(dumped), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    args = [
        "--settings", str(config), "serve", "--vllm-url", vllm_url,
        *(["--vllm-api-key", vllm_api_key] if vllm_api_key else []),
    ]  # fmt: skip
    return start_lorag(args, scratch / "gateway.log", env)


# --- measuring -----------------------------------------------------------------------------------------


async def interleaved(
    targets: Sequence[Target], load: Load, out: Callable[[str], object], gateway_pid: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every target once per repeat, after one warm-up request each (compilation, adapter, embedder).

    Each repeat starts one target later than the previous one, so that no target always runs first (on a
    cold cache) or last (after the others heated the machine).
    """
    for target in targets:
        warm = await run_load(target, PROMPTS, 1, 1, min(load.max_tokens, 4))
        if warm.errors:
            raise RuntimeError(
                f"{target.label} ({target.model}) failed its warm-up request: {warm.error_sample}"
            )
    passes: dict[str, list[dict[str, Any]]] = {target.label: [] for target in targets}
    for repeat in range(load.repeats):
        shift = repeat % len(targets)
        for target in [*targets[shift:], *targets[:shift]]:
            pid = gateway_pid if target.label != DIRECT else None
            metrics, cpu_ms = await pass_with_cpu(
                target, pid, PROMPTS, load.clients, load.requests_per_client, load.max_tokens
            )
            passes[target.label].append(
                {**metrics.as_dict(), **({"gateway_cpu_ms": cpu_ms} if cpu_ms is not None else {})}
            )
            out(
                f"  repeat {repeat + 1}/{load.repeats} {target.label}: {metrics.output_tok_s:.1f} tok/s, "
                f"TTFT p50 {metrics.ttft_p50_ms:.1f} ms, {metrics.errors} errors"
            )
    return passes
