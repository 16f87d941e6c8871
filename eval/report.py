"""Write a run's report: `summary.json`, `report.md`, `plots/*.png` and a self-contained `report.html`
(inline CSS, plots embedded as base64), all from one summary (`eval.summary.summarize_run`), so that the
Markdown, the HTML page and the terminal table (`format_table`) cannot disagree."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from eval.bootstrap import Summary
from eval.plots import LABELS, write_plots
from eval.records import RunInfo
from eval.summary import METRICS, OVERALL
from eval.tables import MISSING, Table, interval, markdown, money, number, text, to_html

SUMMARY_FILE = "summary.json"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"
PLOTS_DIR = "plots"

HOW_TO_READ = (
    "Each question was sent through each route (a model, with or without an adapter and retrieval) by the "
    "gateway, as a client would. *Answer containment* is the share of replies that contain one of the "
    "question's acceptable answers (case and spacing ignored, punctuation kept, so `$319` is looked for as "
    "written). *Exact match* and *token F1* are the SQuAD measures: the reply equals an answer, or how far "
    "their words overlap; they punish long replies that containment accepts. A failed request scores 0. "
    "*Recall@k* is the share of a question's gold sources among the k sources the reply cited, *MRR* the "
    "mean of 1 / the rank of the first gold one; both count only questions that have gold sources and "
    "replies that cited something. *Lexical support* is the share of a reply's words found in the sources "
    "it was given (retrieved replies only): overlap, not proof of faithfulness. Numbers written "
    "`0.92 [0.83, 1.00]` are a mean and its bootstrap 95% interval: with this many questions, the true mean "
    "is likely in that range, and two routes whose intervals overlap may not differ at all. The paired "
    "table settles that: it compares routes question by question, and calls a difference *better* or "
    "*worse* only when its whole interval is on one side of 0."
)

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
p.note { color: #555; font-size: 0.88em; margin-top: -0.5em; }
img { max-width: 100%; margin: 0.5em 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; }
dt { font-weight: 600; }
"""


def write_report(directory: Path, summary: dict[str, Any], info: RunInfo) -> list[Path]:
    """Write the report files into `directory` (the run's own, usually) and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    summary_path = directory / SUMMARY_FILE
    summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    plots = write_plots(directory / PLOTS_DIR, summary)
    tables = report_tables(summary)
    markdown_path, html_path = directory / MARKDOWN_FILE, directory / HTML_FILE
    markdown_path.write_text(render_markdown(info, summary, tables, plots, directory))
    html_path.write_text(render_html(info, summary, tables, plots))
    return [summary_path, markdown_path, html_path, *plots]


def format_table(summary: dict[str, Any]) -> str:
    """One compact table for the terminal: per route, containment overall and per kind with intervals,
    recall@k, tokens per request, p50 latency and cost per 1,000 requests."""
    kinds = summary["kinds"]
    header = ["route", "n", "containment", *kinds, "recall@k", "tokens/req", "p50 s", "cost/1k"]
    rows = []
    for route, numbers in summary["routes"].items():
        quality, cost = numbers["quality"], numbers["cost"]
        rows.append(
            [
                route,
                str(numbers["n"]),
                interval(quality[OVERALL]["containment"]),
                *(interval(quality["by_kind"][kind]["containment"]) for kind in kinds),
                interval(numbers["retrieval"]["recall"]),
                number(numbers["tokens"]["total"], ".0f"),
                number(numbers["latency"]["p50"]),
                money(cost["per_1000"]) if cost else MISSING,
            ]
        )
    note = "means with bootstrap 95% intervals; a failed request counts as a wrong answer"
    return text(Table(_title(summary), header, rows, note))


def _title(summary: dict[str, Any]) -> str:
    run = summary["run"]
    return f"run {run['run_id']} on {run['dataset']} ({run['questions']} questions)"


# ---- the tables -------------------------------------------------------------------------------------------


def report_tables(summary: dict[str, Any]) -> list[Table]:
    """Every table of the report, in reading order."""
    return [
        *(_quality(summary, metric) for metric in METRICS),
        _paired(summary),
        _best(summary),
        _retrieval(summary),
        _latency(summary),
        _tokens(summary),
        _cost(summary),
    ]


def _quality(summary: dict[str, Any], metric: str) -> Table:
    kinds, routes = summary["kinds"], summary["routes"]
    counts = {
        kind: max(r["quality"]["by_kind"][kind][metric]["n"] for r in routes.values()) for kind in kinds
    }
    header = ["route", "n", "errors", "overall", *(f"{kind} (n={counts[kind]})" for kind in kinds)]
    rows = [
        [
            route,
            str(numbers["n"]),
            str(numbers["errors"]),
            interval(numbers["quality"][OVERALL][metric]),
            *(interval(numbers["quality"]["by_kind"][kind][metric]) for kind in kinds),
        ]
        for route, numbers in routes.items()
    ]
    return Table(f"Quality: {LABELS[metric]}", header, rows, "mean [bootstrap 95% interval]")


def _paired(summary: dict[str, Any]) -> Table:
    kinds = summary["kinds"]
    header = ["A vs B", "n", "overall A − B", *kinds]
    rows = []
    for name, result in summary["paired"].items():
        overall = result[OVERALL]
        cells = [overall, *(result["by_kind"][kind] for kind in kinds)]
        rows.append([name, str(overall["difference"]["n"]), *map(_difference, cells)])
    note = (
        "answer containment of A minus B on the questions both answered, with its bootstrap 95% interval: "
        "better or worse only when the whole interval is on one side of 0"
    )
    return Table("Route against route (paired)", header, rows, note)


def _difference(result: dict[str, Any]) -> str:
    if result["verdict"] is None:
        return MISSING
    return f"{interval(result['difference'], signed=True)} {result['verdict']}"


def _best(summary: dict[str, Any]) -> Table:
    best = summary["best_route"]
    groups = [(OVERALL, best[OVERALL]), *best["by_kind"].items()]
    rows = [
        [group, pick["route"], number(pick["containment"]), ", ".join(pick["tied_with"]) or MISSING]
        if pick
        else [group, MISSING, MISSING, MISSING]
        for group, pick in groups
    ]
    note = "the highest mean containment; check the intervals and the paired table before calling it better"
    return Table("Best route", ["questions", "route", "containment", "tied with"], rows, note, numeric_from=2)


def _retrieval(summary: dict[str, Any]) -> Table:
    header = ["route", "retrieved", "k", "recall@k", "MRR", "lexical support"]
    rows = []
    for route, numbers in summary["routes"].items():
        retrieval = numbers["retrieval"]
        share = retrieval["rag_share"]
        rows.append(
            [
                route,
                MISSING if share is None else f"{share:.0%}",
                _span(retrieval["k"]),
                _counted(retrieval["recall"]),
                _counted(retrieval["mrr"]),
                _counted(retrieval["lexical_support"]),
            ]
        )
    note = (
        "retrieved: the share of answered requests whose prompt held sources (mode rag). Recall and MRR "
        "count questions with gold sources whose reply cited something; a cited `file#id` matches a gold `id`"
    )
    return Table("Retrieval", header, rows, note)


def _span(values: list[int]) -> str:
    """`3`, or `1–3` when replies cited different numbers of sources."""
    if not values:
        return MISSING
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def _price(cost: dict[str, Any]) -> str:
    basis = "per token" if cost["basis"] == "per_token" else f"GPU-hour, {cost['capacity_rps']:g} req/s"
    return f"{'default' if cost['price'] == '*' else 'own'}: {basis}"


def _counted(summary: Summary) -> str:
    return MISSING if summary["n"] == 0 else f"{interval(summary)} (n={summary['n']})"


def _latency(summary: dict[str, Any]) -> Table:
    rows = [
        [route, *(number(n["latency"][key], ".3f") for key in ("p50", "p95", "ttft_p50"))]
        for route, n in summary["routes"].items()
    ]
    note = "seconds per answered request, end to end through the gateway; TTFT when the run streamed"
    return Table("Latency", ["route", "p50 s", "p95 s", "time to first token p50 s"], rows, note)


def _tokens(summary: dict[str, Any]) -> Table:
    rows = [
        [route, *(number(n["tokens"][key], ".1f") for key in ("prompt", "completion", "total"))]
        for route, n in summary["routes"].items()
    ]
    note = "means over answered requests, as the gateway reported usage; retrieved sources lengthen prompts"
    return Table("Tokens per request", ["route", "prompt", "completion", "total"], rows, note)


def _cost(summary: dict[str, Any]) -> Table:
    rate = summary["rate_rps"]
    header = ["route", "price", "per 1,000 requests", "per hour", "per day", "per month", "replicas"]
    rows = []
    for route, numbers in summary["routes"].items():
        cost = numbers["cost"]
        if cost is None:
            rows.append([route, numbers["cost_note"] or MISSING, *[MISSING] * 5])
            continue
        projected = cost["projection"]
        rows.append(
            [
                route,
                _price(cost),
                money(cost["per_1000"]),
                *(money(projected[key]) for key in ("per_hour", "per_day", "per_month")),
                MISSING if projected["replicas"] is None else str(projected["replicas"]),
            ]
        )
    note = (
        f"USD; hour, day and month (30 days) at a steady {rate:g} requests/s. Per-token prices scale with "
        "the tokens above; GPU-hour prices with the route's measured capacity, in whole replicas"
    )
    return Table(f"Cost at {rate:g} requests/s", header, rows, note, numeric_from=2)


# ---- rendering --------------------------------------------------------------------------------------------


def _facts(info: RunInfo, summary: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("run", info.run_id),
        ("made", info.created_at),
        ("dataset", f"{info.dataset} ({summary['run']['questions']} questions)"),
        ("routes", ", ".join(info.routes)),
        ("gateway", info.gateway),
        ("generation", f"max_tokens {info.max_tokens}, temperature {info.temperature:g}"),
    ]


def render_markdown(
    info: RunInfo, summary: dict[str, Any], tables: list[Table], plots: list[Path], directory: Path
) -> str:
    """The report as Markdown, pointing at the plots by path relative to `directory`."""
    facts = "\n".join(f"- **{name}**: {value}" for name, value in _facts(info, summary))
    images = "\n\n".join(f"![{p.stem}]({p.relative_to(directory).as_posix()})" for p in plots)
    body = "\n".join(markdown(table) for table in tables)
    return (
        f"# Evaluation report: {info.run_id}\n\n{facts}\n\n## How to read this\n\n{HOW_TO_READ}\n\n"
        f"## Numbers\n\n{body}\n## Plots\n\n{images}\n"
    )


def render_html(info: RunInfo, summary: dict[str, Any], tables: list[Table], plots: list[Path]) -> str:
    """The report as one HTML page that needs nothing else: inline CSS, plots as `data:` URIs."""
    facts = "".join(
        f"<dt>{html.escape(name)}</dt><dd>{html.escape(value)}</dd>" for name, value in _facts(info, summary)
    )
    images = "".join(
        f'<img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode("ascii")}">'
        for p in plots
    )
    body = "".join(to_html(table) for table in tables)
    title = html.escape(f"Evaluation report: {info.run_id}")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body><h1>{title}</h1><dl>{facts}</dl>"
        f"<h2>How to read this</h2><p>{_emphasis(HOW_TO_READ)}</p>"
        f"<h2>Numbers</h2>{body}<h2>Plots</h2>{images}</body></html>\n"
    )


def _emphasis(markdown_text: str) -> str:
    """The few inline Markdown marks `HOW_TO_READ` uses (`*x*`, `` `x` ``), as HTML."""
    escaped = html.escape(markdown_text)
    parts = escaped.split("*")
    escaped = "".join(p if i % 2 == 0 else f"<em>{p}</em>" for i, p in enumerate(parts))
    parts = escaped.split("`")
    return "".join(p if i % 2 == 0 else f"<code>{p}</code>" for i, p in enumerate(parts))
