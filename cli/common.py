"""What every command group shares: the settings a command runs with, option types, and error handling."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from core.settings import Settings, load_settings

SettingsFile = Annotated[
    Path | None,
    typer.Option("--settings", "-s", help="lorag.yaml to read (default: $LORAG_CONFIG or ./lorag.yaml)."),
]
CorpusOption = Annotated[
    Path | None, typer.Option("--corpus", help="Documents to index (default: settings, else the demo).")
]
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
PricesOption = Annotated[
    Path | None,
    typer.Option("--prices", help="YAML price table (route or '*' → prices); default: settings `prices`."),
]


def settings_for(ctx: typer.Context, **overrides: object) -> Settings:
    """The settings a command runs with: `--settings` (or $LORAG_CONFIG / ./lorag.yaml), LORAG_* variables,
    then the command's own options (`overrides`; None leaves a setting as it is)."""
    root = ctx.find_root()
    settings_file = root.obj if isinstance(root.obj, Path) else None
    return load_settings(settings_file, **overrides)


def verbose() -> bool:
    """Whether `lorag --verbose` asked for tracebacks."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` on stderr and return the exit to raise (`raise fail(...)`)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Errors a user can act on (another writer running, no index yet, a model not pulled, an unsafe
    bind, a bad setting, no such adapter, ...) as one line and exit code 1; `--verbose` keeps the
    traceback."""
    from core.models import ModelNotPulledError
    from retrieval.errors import RetrievalError

    try:
        yield
    except (RetrievalError, ModelNotPulledError, RuntimeError, ValueError, FileNotFoundError) as exc:
        if verbose():
            raise
        raise fail(str(exc)) from None
    except LookupError as exc:  # the registry's lookups: no such adapter or version, nothing to roll back
        if verbose():
            raise
        raise fail(str(exc.args[0] if exc.args else exc)) from None


def split_routes(routes: str) -> list[str]:
    """`--routes a,b` → `["a", "b"]`; at least one."""
    names = [name.strip() for name in routes.split(",") if name.strip()]
    if not names:
        raise typer.BadParameter("name at least one route", param_hint="--routes")
    return names
