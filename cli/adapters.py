"""`lorag adapters …`: the registry's versions, and promotion through the eval gate, and rollback."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import settings_for

if TYPE_CHECKING:
    from eval.promotion import Promotion

app = typer.Typer(no_args_is_help=True, help="The adapter registry.")

RouteOption = Annotated[
    str | None,
    typer.Option("--route", help="Route to gate through (default: the one serving the adapter alone)."),
]
GateDatasetOption = Annotated[
    Path | None, typer.Option("--dataset", help="The route's frozen eval set (default: the demo's).")
]
KindsOption = Annotated[
    str, typer.Option("--kinds", help="Comma-separated question kinds to gate on ('' for all of them).")
]
MarginOption = Annotated[
    float | None,
    typer.Option("--margin", help="Largest allowed drop of the mean score (default: promotion_margin)."),
]
GateUrlOption = Annotated[
    str | None, typer.Option("--url", help="A running gateway (default: start `lorag serve` for the gate).")
]
GateApiKeyOption = Annotated[str | None, typer.Option("--api-key", help="The gateway's API key.")]
AdminKeyOption = Annotated[
    str | None, typer.Option("--admin-key", help="An admin key (default: the first of admin_keys).")
]
GateMaxTokensOption = Annotated[int, typer.Option(help="Answer length cap for the gate's questions.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Promote even if the gate refuses (logged).")]


@dataclass(frozen=True)
class GateOptions:
    """The gate's command-line options, shared by `adapters promote` and `retrain`."""

    route: str | None
    dataset: Path | None
    kinds: str
    margin: float | None
    api_key: str | None
    admin_key: str | None
    max_tokens: int

    def keywords(self) -> dict[str, object]:
        """`promote_with_gate`'s keyword arguments (unset ones keep their defaults)."""
        options: dict[str, object] = {
            "route": self.route,
            "kinds": [k for k in self.kinds.split(",") if k.strip()] or None,
            "margin": self.margin,
            "api_key": self.api_key,
            "admin_key": self.admin_key,
            "max_tokens": self.max_tokens,
        }
        if self.dataset is not None:
            options["dataset"] = self.dataset
        return options


def echo_promotion(done: Promotion) -> None:
    """The gate's numbers, a --force warning, and which version is current now."""
    if done.gate is not None:
        typer.echo(done.gate.message)
    if done.forced:
        typer.echo("FORCED past the gate (--force); recorded in the history", err=True)
    was = f" (was {done.previous})" if done.previous and done.previous != done.adapter.version else ""
    typer.echo(f"{done.adapter.served_name} is current{was}")


@app.command("list")
def adapters_list(ctx: typer.Context) -> None:
    """Every adapter version in the registry: `*` marks the served one; parent and final loss follow."""
    from training.registry import AdapterRegistry

    registry = AdapterRegistry(settings_for(ctx).adapters_dir)
    for name in registry.names():
        current = registry.current(name)
        for version in registry.versions(name):
            adapter = registry.get(name, version)
            mark = "*" if current and current.version == version else " "
            parent = adapter.manifest.get("parent") or "-"
            loss = (adapter.manifest.get("metrics") or {}).get("final_loss")
            loss_text = f"{loss:.4f}" if isinstance(loss, int | float) else "-"
            typer.echo(
                f"{mark} {adapter.served_name:20} {adapter.manifest.get('created_at', ''):25} "
                f"parent={parent:5} loss={loss_text:8} {adapter.path}"
            )


@app.command("show")
def adapters_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Adapter name, e.g. demo.")],
    version: Annotated[str | None, typer.Argument(help="e.g. v2 (default: the current one).")] = None,
) -> None:
    """One version as JSON: its manifest, whether it is current and intact, and its promotions."""
    from training.registry import AdapterRegistry

    shown = AdapterRegistry(settings_for(ctx).adapters_dir).show(name, version)
    typer.echo(json.dumps(shown, indent=2))


@app.command("promote")
def adapters_promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Adapter name, e.g. demo.")],
    version: Annotated[str, typer.Argument(help="The candidate version, e.g. v3.")],
    route: RouteOption = None,
    dataset: GateDatasetOption = None,
    kinds: KindsOption = "static",
    margin: MarginOption = None,
    url: GateUrlOption = None,
    api_key: GateApiKeyOption = None,
    admin_key: AdminKeyOption = None,
    max_tokens: GateMaxTokensOption = 64,
    force: ForceOption = False,
) -> None:
    """Serve a candidate version if the gate passes it: it and the current version answer the route's
    frozen eval set through the gateway, and it may score worse by at most the margin (exit 1 if not)."""
    from eval.promotion import promote_with_gate

    settings = settings_for(ctx)
    options = GateOptions(route, dataset, kinds, margin, api_key, admin_key, max_tokens)
    done = promote_with_gate(settings, name, version, force=force, gateway_url=url, **options.keywords())
    echo_promotion(done)


@app.command("rollback")
def adapters_rollback(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Adapter name, e.g. demo.")]
) -> None:
    """Serve the version promoted before the current one again (each rollback goes one step further)."""
    from training.registry import AdapterRegistry

    adapter = AdapterRegistry(settings_for(ctx).adapters_dir).rollback(name)
    typer.echo(f"{adapter.served_name} is current")
