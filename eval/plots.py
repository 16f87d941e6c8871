"""The report's charts, drawn from a run summary (`eval.summary.summarize_run`) into PNG files.

matplotlib is imported inside the functions (a bare `Figure` renders with Agg: no display, no pyplot state),
so that importing `eval` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.summary import METRICS, OVERALL

LABELS = {"containment": "answer containment", "exact_match": "exact match", "token_f1": "token F1"}


def write_plots(directory: Path, summary: dict[str, Any]) -> list[Path]:
    """Write `quality.png`, `latency.png`, `tokens.png` and, when any route is priced, `cost.png`."""
    directory.mkdir(parents=True, exist_ok=True)
    routes = summary["routes"]
    paths = [
        _quality(directory / "quality.png", routes, summary["kinds"]),
        _latency(directory / "latency.png", routes),
        _tokens(directory / "tokens.png", routes),
    ]
    if any(route["cost"] for route in routes.values()):
        paths.append(_cost(directory / "cost.png", routes))
    return paths


def _figure(width: float, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _quality(path: Path, routes: dict[str, Any], kinds: Sequence[str]) -> Path:
    """One panel per answer metric: a bar per route in each group (overall, then each kind), with its
    bootstrap interval as the error bar."""
    groups = [OVERALL, *kinds]
    figure = _figure(4.2 * len(METRICS))
    width = 0.8 / max(len(routes), 1)
    for axes, metric in zip(figure.subplots(1, len(METRICS), squeeze=False)[0], METRICS, strict=True):
        for i, (route, numbers) in enumerate(routes.items()):
            cells = [_cell(numbers["quality"], group)[metric] for group in groups]
            means = [c["mean"] if c["mean"] is not None else 0.0 for c in cells]
            errors = [
                [m - c["low"] if c["low"] is not None else 0.0 for m, c in zip(means, cells, strict=True)],
                [c["high"] - m if c["high"] is not None else 0.0 for m, c in zip(means, cells, strict=True)],
            ]
            positions = [g + (i - (len(routes) - 1) / 2) * width for g in range(len(groups))]
            axes.bar(positions, means, width, yerr=errors, capsize=3, label=route)
        axes.set_xticks(range(len(groups)), groups)
        axes.set(ylim=(0, 1.05), title=LABELS[metric])
        axes.grid(axis="y", alpha=0.3)
    # Below the panels, where it hides no bar.
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=max(len(routes), 1), fontsize="small")
    figure.suptitle("quality by route and question kind (bars: bootstrap 95% intervals)")
    figure.savefig(path, dpi=100)
    return path


def _cell(quality: dict[str, Any], group: str) -> dict[str, Any]:
    return quality[OVERALL] if group == OVERALL else quality["by_kind"][group]


def _latency(path: Path, routes: dict[str, Any]) -> Path:
    figure = _figure(max(5.0, 1.4 * len(routes)))
    axes = figure.subplots()
    names = list(routes)
    for offset, key in ((-0.2, "p50"), (0.2, "p95")):
        values = [routes[r]["latency"][key] or 0.0 for r in names]
        axes.bar([i + offset for i in range(len(names))], values, 0.4, label=key)
    axes.set_xticks(range(len(names)), names)
    axes.set(ylabel="seconds", title="latency per request")
    axes.legend(fontsize="small")
    axes.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=100)
    return path


def _tokens(path: Path, routes: dict[str, Any]) -> Path:
    figure = _figure(max(5.0, 1.4 * len(routes)))
    axes = figure.subplots()
    names = list(routes)
    prompt = [routes[r]["tokens"]["prompt"] or 0.0 for r in names]
    completion = [routes[r]["tokens"]["completion"] or 0.0 for r in names]
    axes.bar(names, prompt, 0.6, label="prompt")
    axes.bar(names, completion, 0.6, bottom=prompt, label="completion")
    axes.set(ylabel="tokens (mean)", title="tokens per request")
    axes.legend(fontsize="small")
    axes.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=100)
    return path


def _cost(path: Path, routes: dict[str, Any]) -> Path:
    figure = _figure(max(5.0, 1.4 * len(routes)))
    axes = figure.subplots()
    # Unpriced routes are left out rather than drawn at $0, which would read as free.
    names = [route for route, numbers in routes.items() if numbers["cost"]]
    axes.bar(names, [routes[r]["cost"]["per_1000"] for r in names], 0.6)
    axes.set(ylabel="USD", title="cost per 1,000 requests (priced routes)")
    axes.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=100)
    return path
