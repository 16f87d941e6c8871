"""`lorag bench …`: each benchmark prints one table against its baseline (run them on a quiet machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import settings_for

app = typer.Typer(no_args_is_help=True, help="Benchmarks that print one table (run on a quiet machine).")


@app.command("retrieval")
def bench_retrieval(
    data: Annotated[
        Path,
        typer.Option(help="Folder with hotpotqa/ (the shared datasets); missing: text steps are skipped."),
    ] = Path("../shared/data"),
    quick: Annotated[bool, typer.Option(help="Tiny synthetic sizes, to check the benchmark runs.")] = False,
) -> None:
    """Recall/MRR of bm25, dense and hybrid on HotpotQA dev; build vs direct embedding throughput; refresh
    vs rebuild time; search latency of exact and HNSW at 100K chunks."""
    from bench.retrieval import run_retrieval_bench

    run_retrieval_bench(data if data.is_dir() else None, out=typer.echo, quick=quick)


@app.command("embedders")
def bench_embedders(
    data: Annotated[
        Path,
        typer.Option(
            help="Folder with pubmedqa/ and hotpotqa/ (the shared datasets); missing: synthetic text."
        ),
    ] = Path("../shared/data"),
    refs: Annotated[
        str | None,
        typer.Option(
            "--refs", help="Comma-separated embedders, baseline first (default: torch vs the CPU default)."
        ),
    ] = None,
    quick: Annotated[bool, typer.Option(help="Tiny synthetic sizes, to check the benchmark runs.")] = False,
) -> None:
    """Embedding backends in the same run: chunks/s on PubMedQA dev chunks (target >= 2x torch), one query's
    latency, and HotpotQA-dev recall@10 (target within 0.01 of torch)."""
    from bench.embedding import DEFAULT_REFS, run_embed_bench

    names = [ref.strip() for ref in refs.split(",") if ref.strip()] if refs else list(DEFAULT_REFS)
    run_embed_bench(data if data.is_dir() and not quick else None, names, out=typer.echo, quick=quick)


@app.command("train")
def bench_train(
    ctx: typer.Context,
    quick: Annotated[bool, typer.Option(help="The tiny model for a few steps only: a smoke run.")] = False,
    steps: Annotated[int, typer.Option(help="Optimizer steps on SmolLM2 (the tiny model takes 30).")] = 20,
) -> None:
    """Training tokens/s (real tokens) and peak memory of the recipe, packed and length-grouped, against
    plain PEFT + transformers.Trainer (dynamic padding, group_by_length) on the same data and budget."""
    from bench.train import run_train_bench

    run_train_bench(settings_for(ctx).cache_dir, out=typer.echo, quick=quick, steps=steps)


@app.command("from-docs")
def bench_from_docs(
    ctx: typer.Context,
    work: Annotated[
        Path | None,
        typer.Option("--work", help="Where its steps keep their output (default: HOME/bench/from-docs)."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Start over instead of resuming the steps already done.")
    ] = False,
    raft: Annotated[
        bool, typer.Option(help="Add RAFT examples (distractors from the demo index) to the generated data.")
    ] = True,
) -> None:
    """Documents to adapter on the demo: the handbook → training data → an adapter (`docs`), evaluated on
    the frozen demo eval set against the hand-written demo adapter and the base model in one run, then one
    page edited and the data rebuilt incrementally. Resumes a killed run; `--fresh` starts over."""
    from bench.from_docs import run_from_docs_bench

    settings = settings_for(ctx)
    work = work or settings.home / "bench" / "from-docs"
    run_from_docs_bench(settings, work, echo=typer.echo, fresh=fresh, raft=raft)


@app.command("serve")
def bench_serve(
    ctx: typer.Context,
    clients: Annotated[int, typer.Option(help="Concurrent streaming clients.")] = 16,
    max_tokens: Annotated[int, typer.Option(help="Output tokens per request (ignore_eos).")] = 128,
    repeats: Annotated[int, typer.Option(help="Interleaved rounds over all targets.")] = 3,
    requests_per_client: Annotated[int, typer.Option(help="Requests per client and pass.")] = 4,
    quick: Annotated[
        bool, typer.Option(help="2 clients x 8 tokens once, no HF stream: a smoke run.")
    ] = False,
    vllm_url: Annotated[
        str | None, typer.Option("--vllm-url", help="Use this running vLLM server instead of starting one.")
    ] = None,
    vllm_api_key: Annotated[str | None, typer.Option("--vllm-api-key", help="API key of --vllm-url.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the results as JSON here, and a .png chart beside it.")
    ] = None,
    port_range: Annotated[
        str | None, typer.Option("--port-range", help="Listen only on these ports, e.g. 18100-18199.")
    ] = None,
) -> None:
    """Gateway overhead: the same streaming load, interleaved, against vLLM directly and the gateway's
    base, base+rag and demo (LoRA) routes, plus retrieval alone and one HF generate() stream."""
    from bench.serve import run_serve_bench
    from core.processes import parse_port_range

    run_serve_bench(
        settings_for(ctx),
        clients=clients,
        max_tokens=max_tokens,
        repeats=repeats,
        requests_per_client=requests_per_client,
        quick=quick,
        vllm_url=vllm_url,
        vllm_api_key=vllm_api_key,
        json_path=out,
        port_range=parse_port_range(port_range) if port_range else None,
        out=typer.echo,
    )
