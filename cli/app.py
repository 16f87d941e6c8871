"""The root `lorag` command: global options, and every command group mounted under its name."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from cli import adapters, bench, eval, index, serve, train
from cli.common import SettingsFile
from cli.errors import LoragGroup

LORAG_PACKAGES = ("core", "retrieval", "training", "serving", "eval", "bench", "cli")

app = typer.Typer(
    cls=LoragGroup,
    no_args_is_help=True,
    help="Serve an LLM with LoRA adapters and a fresh retrieval index.",
)
app.command("serve")(serve.serve)
app.command("retrain")(train.retrain)
app.add_typer(serve.models_app, name="models")
app.add_typer(index.app, name="index")
app.add_typer(serve.demo_app, name="demo")
app.add_typer(adapters.app, name="adapters")
app.add_typer(train.app, name="train")
app.add_typer(eval.app, name="eval")
app.add_typer(bench.app, name="bench")


@app.callback()
def main(
    ctx: typer.Context,
    settings: SettingsFile = None,
    verbose: Annotated[bool, typer.Option(help="Show tracebacks and debug logs.")] = False,
) -> None:
    """lorag: static knowledge in LoRA adapters, evolving knowledge in a vector index, one OpenAI API.

    Exit codes: 0 done, 1 refused or not possible now (a gate, a lock, no index yet, a server down),
    2 bad input (a missing or malformed file, a bad option or setting).
    """
    ctx.obj = settings
    # force: a second command in one process (tests call the CLI as functions) must not keep writing to
    # the first one's stderr, which may be closed by now. Other libraries' INFO lines (faiss's loader,
    # httpx's requests) would bury lorag's own: only warnings from them, unless --verbose.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for package in LORAG_PACKAGES:
        logging.getLogger(package).setLevel(logging.DEBUG if verbose else logging.INFO)
