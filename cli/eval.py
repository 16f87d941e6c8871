"""`lorag eval …`: routes measured on your questions, runs compared, `auto` calibrated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    ApiKeyOption,
    OutOption,
    PricesOption,
    RoutesOption,
    UrlOption,
    settings_for,
    split_routes,
)

app = typer.Typer(
    no_args_is_help=True, help="Measure routes on your questions; compare runs; calibrate `auto`."
)
DEMO_DATASET = Path("eval/datasets/demo.jsonl")
MaxTokensOption = Annotated[int, typer.Option(help="Answer length cap.")]
ConcurrencyOption = Annotated[int, typer.Option(help="Requests in flight.")]
RateOption = Annotated[float, typer.Option(help="Requests/s for the cost projection.")]


@app.command("run")
def eval_run(
    ctx: typer.Context,
    dataset: Annotated[
        Path, typer.Option("--dataset", help="lorag JSONL, SQuAD JSON, HotpotQA or PubMedQA.")
    ] = DEMO_DATASET,
    routes: RoutesOption = "base,demo,base+rag,demo+rag",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    out: OutOption = None,
    max_tokens: MaxTokensOption = 64,
    concurrency: ConcurrencyOption = 4,
    k: Annotated[int | None, typer.Option("--k", help="Sources per request (overrides the routes').")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    rate: RateOption = 10.0,
    prices: PricesOption = None,
) -> None:
    """Every question through every route (the production path), then a report: quality with intervals,
    retrieval, latency, tokens and cost per route (report.md, report.html, summary.json)."""
    from eval.commands import run_eval

    run_eval(
        settings_for(ctx),
        dataset,
        split_routes(routes),
        url=url,
        api_key=api_key,
        out=out,
        max_tokens=max_tokens,
        concurrency=concurrency,
        k=k,
        limit=limit,
        rate_rps=rate,
        prices_file=prices,
        echo=typer.echo,
    )


@app.command("report")
def eval_report(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="A run directory.")],
    rate: RateOption = 10.0,
    prices: PricesOption = None,
) -> None:
    """Rebuild a run's report from its records (e.g. with new prices)."""
    from eval.commands import report

    paths = report(run, settings_for(ctx), rate, prices, echo=typer.echo)
    for path in paths:
        typer.echo(str(path))


@app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="The earlier run directory.")],
    b: Annotated[Path, typer.Argument(help="The later run directory.")],
) -> None:
    """What changed between two runs: per route and kind, with paired intervals on shared questions."""
    from eval.commands import compare

    compare(a, b, echo=typer.echo)


@app.command("calibrate")
def eval_calibrate(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Option("--dataset", help="Questions to calibrate on.")] = DEMO_DATASET,
    routes: RoutesOption = "base+rag,demo+rag",
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    out: OutOption = None,
    max_tokens: MaxTokensOption = 64,
    concurrency: ConcurrencyOption = 4,
    held_out: Annotated[float, typer.Option(help="Share of questions held out for the report.")] = 0.5,
    write: Annotated[bool, typer.Option(help="Publish the thresholds (gateways reload them).")] = True,
) -> None:
    """Fit each route's `auto` threshold on a calibration split and report `auto` vs `never` vs `always` on
    the held-out split; publishes a new thresholds version."""
    from eval.commands import calibrate_routes

    calibrate_routes(
        settings_for(ctx),
        dataset,
        split_routes(routes),
        url=url,
        api_key=api_key,
        out=out,
        max_tokens=max_tokens,
        concurrency=concurrency,
        held_out_share=held_out,
        write=write,
        echo=typer.echo,
    )


@app.command("refresh-scenario")
def eval_refresh_scenario(
    ctx: typer.Context,
    routes: RoutesOption = "base+rag,demo+rag,demo",
    out: OutOption = None,
    max_tokens: MaxTokensOption = 48,
) -> None:
    """Facts change in a copy of the demo corpus, `index refresh` runs, and the retrieval routes answer with
    the new facts on the same adapter version (eval/datasets/demo_refresh)."""
    from eval.run import new_run_id
    from eval.scenario import run_refresh_scenario

    settings = settings_for(ctx)
    directory = out or settings.home / "eval" / f"refresh-{new_run_id()}"
    run_refresh_scenario(
        settings, split_routes(routes), out=directory, max_tokens=max_tokens, echo=typer.echo
    )
    typer.echo(f"records and scenario.json: {directory}")
