"""What every command group shares: the settings a command runs with and option types (errors: errors.py)."""

from __future__ import annotations

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


def split_routes(routes: str) -> list[str]:
    """`--routes a,b` → `["a", "b"]`; at least one."""
    names = [name.strip() for name in routes.split(",") if name.strip()]
    if not names:
        raise typer.BadParameter("name at least one route", param_hint="--routes")
    return names
