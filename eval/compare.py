"""`lorag eval compare A B`: what changed between two evaluation runs, route by route.

Each run is summarised from its records (`eval.summary.summarize_run`), so runs whose reports were never
written compare too. Per route common to both: every answer metric overall and per question kind as
A → B with the change; where both runs answered the same questions (same id, same question text, same kind)
the paired difference B − A on those questions with its bootstrap 95% interval and a verdict (`better`,
`worse`, or `no clear change` when the interval reaches 0); then retrieval, tokens per request, latency and
cost as A → B. Costs use each run's own recorded prices unless `prices` is given, so that a changed price
table is not mistaken for a changed route (pass the same prices to compare the routes alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.prices import Price
from eval.records import Record, RunInfo, read_run
from eval.summary import METRICS, OVERALL, by_route, pair, summarize_run
from eval.tables import MISSING, Table, interval, money, number, text

SERVING = {
    "tokens_per_request": ("tokens", "total"),
    "prompt_tokens": ("tokens", "prompt"),
    "completion_tokens": ("tokens", "completion"),
    "latency_p50": ("latency", "p50"),
    "latency_p95": ("latency", "p95"),
}
RETRIEVAL = ("recall", "mrr", "lexical_support")


def compare_runs(
    a_dir: Path, b_dir: Path, *, prices: dict[str, Price] | None = None, rate_rps: float = 10.0
) -> dict[str, Any]:
    """Run B against run A (JSON-able): `a`, `b` (which runs), `routes` (route → changes), `only_in_a`,
    `only_in_b`."""
    info_a, records_a = read_run(a_dir)
    info_b, records_b = read_run(b_dir)
    summary_a = summarize_run(info_a, records_a, prices=prices, rate_rps=rate_rps)
    summary_b = summarize_run(info_b, records_b, prices=prices, rate_rps=rate_rps)
    answered_a, answered_b = by_route(info_a, records_a), by_route(info_b, records_b)
    kinds = sorted(set(summary_a["kinds"]) | set(summary_b["kinds"]))
    common = [route for route in answered_a if route in answered_b]
    return {
        "a": _which(a_dir, info_a),
        "b": _which(b_dir, info_b),
        "kinds": kinds,
        "routes": {
            route: _route(
                summary_a["routes"][route],
                summary_b["routes"][route],
                answered_a[route],
                answered_b[route],
                kinds,
            )
            for route in common
        },
        "only_in_a": [route for route in answered_a if route not in answered_b],
        "only_in_b": [route for route in answered_b if route not in answered_a],
    }


def _which(directory: Path, info: RunInfo) -> dict[str, str]:
    return {
        "dir": str(directory),
        "run_id": info.run_id,
        "dataset": info.dataset,
        "created_at": info.created_at,
    }


def _route(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    records_a: Mapping[str, Record],
    records_b: Mapping[str, Record],
    kinds: list[str],
) -> dict[str, Any]:
    shared = sorted(q for q in records_a if q in records_b and _same_question(records_a[q], records_b[q]))
    quality = {
        group: {
            metric: {
                **_change(_quality(a, group, metric), _quality(b, group, metric)),
                "paired": _paired(records_a, records_b, shared, group, metric),
            }
            for metric in METRICS
        }
        for group in (OVERALL, *kinds)
    }
    cost_a, cost_b = a["cost"], b["cost"]
    return {
        "shared_questions": len(shared),
        "same_questions": len(shared) == len(records_a) == len(records_b),
        "quality": quality,
        "retrieval": {
            **{
                name: _change(a["retrieval"][name]["mean"], b["retrieval"][name]["mean"])
                for name in RETRIEVAL
            },
            "rag_share": _change(a["retrieval"]["rag_share"], b["retrieval"]["rag_share"]),
        },
        "serving": {
            **{name: _change(a[part][key], b[part][key]) for name, (part, key) in SERVING.items()},
            "cost_per_1000": _change(
                cost_a["per_1000"] if cost_a else None, cost_b["per_1000"] if cost_b else None
            ),
        },
    }


def _same_question(first: Record, second: Record) -> bool:
    # An id alone could be reused by another dataset for another question; pairing those would be noise.
    return first.question == second.question and first.kind == second.kind


def _quality(summary: Mapping[str, Any], group: str, metric: str) -> float | None:
    quality = summary["quality"]
    cell = quality[OVERALL] if group == OVERALL else quality["by_kind"].get(group)
    return None if cell is None else cell[metric]["mean"]


def _paired(
    records_a: Mapping[str, Record],
    records_b: Mapping[str, Record],
    shared: list[str],
    group: str,
    metric: str,
) -> dict[str, Any] | None:
    ids = shared if group == OVERALL else [q for q in shared if records_a[q].kind == group]
    if not ids:
        return None
    result = pair(records_b, records_a, ids, metric)
    return {"difference": result["difference"], "verdict": result["verdict"]}


def _change(a: float | None, b: float | None) -> dict[str, float | None]:
    return {"a": a, "b": b, "delta": None if a is None or b is None else b - a}


# ---- the terminal -----------------------------------------------------------------------------------------


def format_comparison(result: dict[str, Any]) -> str:
    """The comparison as text: who is A and B, one table per common route, and the routes in one run only."""
    a, b = result["a"], result["b"]
    parts = [
        f"A: {a['run_id']} ({a['dataset']}, {a['created_at']})  {a['dir']}",
        f"B: {b['run_id']} ({b['dataset']}, {b['created_at']})  {b['dir']}",
    ]
    for route, changes in result["routes"].items():
        parts.append("")
        parts.append(text(_route_table(route, changes, result["kinds"])))
    for side in ("a", "b"):
        if result[f"only_in_{side}"]:
            parts.append(f"\nOnly in {side.upper()}: {', '.join(result[f'only_in_{side}'])}")
    return "\n".join(parts)


def _route_table(route: str, changes: dict[str, Any], kinds: list[str]) -> Table:
    header = ["measure", "kind", "A", "B", "change", "paired B − A [95%]", "verdict"]
    rows = []
    for metric in METRICS:
        for group in (OVERALL, *kinds):
            cell = changes["quality"][group][metric]
            paired = cell["paired"]
            rows.append(
                [
                    metric,
                    group,
                    *_numbers(cell, ".2f"),
                    interval(paired["difference"], signed=True) if paired else MISSING,
                    paired["verdict"] if paired else MISSING,
                ]
            )
    for name, cell in changes["retrieval"].items():
        rows.append([name, OVERALL, *_numbers(cell, ".2f"), "", ""])
    for name, cell in changes["serving"].items():
        form = ".3f" if name.startswith("latency") else ".1f"
        rows.append(
            [
                _SERVING_LABELS.get(name, name),
                "",
                *_numbers(cell, form, dollars=name == "cost_per_1000"),
                "",
                "",
            ]
        )
    paired_on = changes["shared_questions"]
    note = f"paired on {paired_on} questions answered in both runs"
    if not changes["same_questions"]:
        note += " (the runs did not answer the same set: A → B means are over different questions)"
    return Table(f"route {route}", header, rows, note, numeric_from=2)


_SERVING_LABELS = {
    "latency_p50": "latency p50 s",
    "latency_p95": "latency p95 s",
    "cost_per_1000": "cost / 1k",
}


def _numbers(cell: Mapping[str, float | None], form: str, *, dollars: bool = False) -> list[str]:
    """A, B and the signed change, as text."""
    delta = cell["delta"]
    if dollars:
        change = MISSING if delta is None else f"{'-' if delta < 0 else '+'}{money(abs(delta))}"
        return [money(cell["a"]), money(cell["b"]), change]
    return [
        number(cell["a"], form),
        number(cell["b"], form),
        MISSING if delta is None else f"{delta:+{form}}",
    ]
