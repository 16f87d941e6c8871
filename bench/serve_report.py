"""`lorag bench serve`'s report: medians and spreads of repeated passes, the verdict, the table, JSON, a plot.

Everything here is pure arithmetic and formatting except `write_plot`, so it is unit-tested without servers.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METRICS: tuple[tuple[str, str, str], ...] = (
    ("output_tok_s", "out tok/s", "{:.1f}"),
    ("requests_s", "req/s", "{:.2f}"),
    ("ttft_p50_ms", "TTFT p50 ms", "{:.1f}"),
    ("ttft_p99_ms", "TTFT p99 ms", "{:.1f}"),
    ("itl_p50_ms", "ITL p50 ms", "{:.1f}"),
    ("gateway_cpu_ms", "gateway CPU ms/req", "{:.2f}"),
)
"""(PassMetrics field, column header, number format), in table order."""

THROUGHPUT_TARGET = 0.95
"""(b) gateway / (a) vLLM output tokens per second, at least."""
TTFT_DELTA_MS = 50.0
"""(b) TTFT p50 at most this much above (a), at 16 simultaneous streams."""
LORA_THROUGHPUT_TARGET = 0.8
"""(d) adapter route / (b) base route output tokens per second, at least."""
LORA_TTFT_SHARE = 0.3
"""(d) TTFT p50 at most this share above (b)'s."""
RETRIEVAL_SLACK_MS = 10.0
"""(c) TTFT p50 at most retrieval p50 plus this much above (b)."""


@dataclass(frozen=True)
class Spread:
    """A metric over the repeats: median, min and max."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            return cls(math.nan, math.nan, math.nan)
        return cls(statistics.median(finite), min(finite), max(finite))

    @property
    def width(self) -> float:
        return self.high - self.low

    def format(self, fmt: str) -> str:
        if math.isnan(self.median):
            return "-"
        if self.width == 0:
            return fmt.format(self.median)
        return f"{fmt.format(self.median)} [{fmt.format(self.low)}-{fmt.format(self.high)}]"


Passes = Mapping[str, Sequence[Mapping[str, float]]]
"""Target label → one metrics dict per repeat (`PassMetrics.as_dict()`)."""


def summarize_passes(passes: Passes) -> dict[str, dict[str, Spread]]:
    """Median and min-max of every metric per target."""
    return {
        label: {key: Spread.of([float(run.get(key, math.nan)) for run in runs]) for key, _, _ in METRICS}
        for label, runs in passes.items()
    }


def paired(passes: Passes, a: str, b: str, key: str, ratio: bool = False) -> Spread:
    """`b - a` (or `b / a`) of one metric, repeat by repeat. The passes were interleaved, so each pair
    shared the machine's state; the pairs' range is the fair yardstick for a small difference."""
    values = [
        (y[key] / x[key] if x[key] else math.nan) if ratio else y[key] - x[key]
        for x, y in zip(passes[a], passes[b], strict=True)
    ]
    return Spread.of(values)


@dataclass(frozen=True)
class Check:
    """One line of the verdict."""

    name: str
    value: str
    target: str
    met: bool
    within_noise: bool
    """The difference from the baseline is no larger than the baseline's own spread across repeats."""

    def line(self) -> str:
        outcome = "met" if self.met else "MISSED"
        noise = "; difference within the baseline's spread" if self.within_noise else ""
        return f"{self.name}: {self.value}, target {self.target} ({outcome}{noise})"


def verdict(passes: Passes, labels: Mapping[str, str], retrieval_p50_ms: float | None) -> list[Check]:
    """The issue's targets. `labels` maps the roles `direct`, `gateway`, `rag` (and `lora`) to target labels.

    A MISSED check whose difference is within the baseline's spread is noise until a quieter run says
    otherwise; a met one is reported as met either way.
    """
    summary = summarize_passes(passes)
    direct, gateway = labels["direct"], labels["gateway"]
    base_tok, base_ttft = summary[direct]["output_tok_s"], summary[direct]["ttft_p50_ms"]
    ratio = paired(passes, direct, gateway, "output_tok_s", ratio=True)
    ttft = paired(passes, direct, gateway, "ttft_p50_ms")
    checks = [
        Check(
            "(b)/(a) output tok/s",
            f"{ratio.format('{:.3f}')}x",
            f">= {THROUGHPUT_TARGET:.2f}x",
            ratio.median >= THROUGHPUT_TARGET,
            abs(1 - ratio.median) * base_tok.median <= base_tok.width,
        ),
        Check(
            "(b)-(a) TTFT p50",
            f"{ttft.format('{:+.1f}')} ms",
            f"<= +{TTFT_DELTA_MS:.0f} ms",
            ttft.median <= TTFT_DELTA_MS,
            abs(ttft.median) <= base_ttft.width,
        ),
    ]
    if "rag" in labels and retrieval_p50_ms is not None:
        rag = paired(passes, gateway, labels["rag"], "ttft_p50_ms")
        allowed = retrieval_p50_ms + RETRIEVAL_SLACK_MS
        checks.append(
            Check(
                "(c)-(b) TTFT p50",
                f"{rag.format('{:+.1f}')} ms",
                f"<= retrieval p50 {retrieval_p50_ms:.1f} + {RETRIEVAL_SLACK_MS:.0f} = {allowed:.1f} ms",
                rag.median <= allowed,
                abs(rag.median) <= summary[gateway]["ttft_p50_ms"].width,
            )
        )
    return checks


def lora_checks(passes: Passes, labels: Mapping[str, str]) -> list[Check]:
    """The adapter route against the same gateway's base route: throughput and TTFT."""
    if "lora" not in labels:
        return []
    base, lora = labels["gateway"], labels["lora"]
    ratio = paired(passes, base, lora, "output_tok_s", ratio=True)
    ttft = paired(passes, base, lora, "ttft_p50_ms", ratio=True)
    base_tok = summarize_passes(passes)[base]["output_tok_s"]
    return [
        Check(
            "(d)/(b) output tok/s",
            f"{ratio.format('{:.3f}')}x",
            f">= {LORA_THROUGHPUT_TARGET:.2f}x",
            ratio.median >= LORA_THROUGHPUT_TARGET,
            abs(1 - ratio.median) * base_tok.median <= base_tok.width,
        ),
        Check(
            "(d)/(b) TTFT p50",
            f"{ttft.format('{:.2f}')}x",
            f"<= {1 + LORA_TTFT_SHARE:.2f}x",
            ttft.median <= 1 + LORA_TTFT_SHARE,
            False,
        ),
    ]


def wave_line(passes: Passes, a: str, b: str) -> str | None:
    """`b - a` of each wave's TTFT p50, repeat by repeat (median [min..max]): which burst a TTFT
    difference comes from. None when the passes hold no waves (results from before they were kept)."""
    waves: list[tuple[Sequence[float], Sequence[float]]] = [
        (_waves(x), _waves(y)) for x, y in zip(passes[a], passes[b], strict=True)
    ]
    count = min((min(len(x), len(y)) for x, y in waves), default=0)
    if count == 0:
        return None
    spreads = [Spread.of([y[k] - x[k] for x, y in waves]) for k in range(count)]
    by_wave = ", ".join(f"wave {k + 1} {spread.format('{:+.0f}')}" for k, spread in enumerate(spreads))
    return f"  {b} - {a} TTFT p50 by wave (the k-th request of every client), ms: {by_wave}"


def _waves(run: Mapping[str, Any]) -> Sequence[float]:
    return run.get("ttft_p50_by_wave_ms") or ()


def format_table(
    summary: Mapping[str, Mapping[str, Spread]], extra: Mapping[str, Mapping[str, float]]
) -> str:
    """One aligned table: a row per target (`median [min-max]` over repeats), then single-run rows
    (`extra`, e.g. the HF generate() stream) whose missing metrics print as `-`."""
    header = ["target", *(title for _, title, _ in METRICS)]
    rows = [header]
    for label, metrics in summary.items():
        rows.append([label, *(metrics[key].format(fmt) for key, _, fmt in METRICS)])
    for label, values in extra.items():
        rows.append([label, *(fmt.format(values[key]) if key in values else "-" for key, _, fmt in METRICS)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: Path, results: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


def write_plot(
    path: Path, summary: Mapping[str, Mapping[str, Spread]], extra: Mapping[str, Mapping[str, float]]
) -> None:
    """Two bar charts, output tok/s and TTFT p50 per target, with min-max over repeats as error bars."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    bars = {label: dict(metrics) for label, metrics in summary.items()}
    for label, values in extra.items():
        bars[label] = {
            key: Spread.of([values[key]]) for key in ("output_tok_s", "ttft_p50_ms") if key in values
        }
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, (key, title) in zip(
        axes, (("output_tok_s", "output tokens/s"), ("ttft_p50_ms", "TTFT p50 (ms)")), strict=True
    ):
        labels = [label for label in bars if key in bars[label]]
        spreads = [bars[label][key] for label in labels]
        errors = [[s.median - s.low for s in spreads], [s.high - s.median for s in spreads]]
        axis.bar(range(len(labels)), [s.median for s in spreads], yerr=errors, capsize=4, color="tab:blue")
        axis.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
        axis.set_title(f"{title}: median, min-max over repeats")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
