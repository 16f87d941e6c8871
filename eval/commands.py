"""The `lorag eval` commands: run a dataset through a gateway, report, compare, calibrate `auto`.

Each writes a run directory (`<home>/eval/<run id>/` unless `--out` says otherwise) holding the raw records,
so a report can be rebuilt, and two runs compared, without asking the model again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.prices import Price
from core.settings import Settings
from core.types import ModelRef
from eval.bootstrap import summarize
from eval.calibrate import HELD_OUT, Outcome, auto_scores, fit_threshold, retrieval_share, split
from eval.datasets import Dataset, load_dataset
from eval.gateway import dataset_home, dataset_home_dir, managed_gateway
from eval.metrics import answer_contained
from eval.records import Record, RunInfo, write_run
from eval.run import new_run_id, run_questions
from eval.tables import interval
from retrieval.embedders import embedder_name

Echo = Callable[[str], None]


@contextmanager
def gateway_for(settings: Settings, dataset: Dataset, name: str, url: str | None, log: Path) -> Iterator[str]:
    """The gateway to evaluate: `url`, or a managed one on the dataset's own index (or lorag's home)."""
    if url:
        yield url.rstrip("/")
        return
    home = dataset_home(settings, name, dataset.documents) if dataset.documents else settings.home
    with managed_gateway(home, log) as managed:
        yield managed


def ask_all(
    settings: Settings,
    url: str,
    api_key: str | None,
    dataset: Dataset,
    routes: Sequence[str],
    *,
    max_tokens: int,
    concurrency: int,
    retrieval: str | None = None,
    k: int | None = None,
    label: str = "eval",
) -> list[Record]:
    """Every question through every route, with a progress bar."""
    from openai import AsyncOpenAI
    from tqdm import tqdm

    async def go() -> list[Record]:
        client = AsyncOpenAI(
            base_url=f"{url}/v1",
            api_key=api_key or "unused",
            max_retries=0,
            timeout=settings.request_timeout_s,
        )
        with tqdm(total=len(dataset.questions) * len(routes), desc=label, unit="req") as bar:
            try:
                return await run_questions(
                    client,
                    dataset.questions,
                    routes,
                    max_tokens=max_tokens,
                    concurrency=concurrency,
                    retrieval=retrieval,
                    k=k,
                    progress=lambda done, total: bar.update(1),
                )
            finally:
                await client.close()

    return asyncio.run(go())


def run_eval(
    settings: Settings,
    dataset_path: Path,
    routes: Sequence[str],
    *,
    url: str | None = None,
    api_key: str | None = None,
    out: Path | None = None,
    max_tokens: int = 64,
    concurrency: int = 4,
    k: int | None = None,
    limit: int | None = None,
    rate_rps: float = 10.0,
    prices_file: Path | None = None,
    echo: Echo = print,
) -> Path:
    """`lorag eval run`: answers, records, summary and report; returns the run directory."""
    from eval.report import format_table, write_report
    from eval.summary import summarize_run

    dataset = _load(dataset_path, limit)
    prices = load_prices(settings, prices_file)
    run_id = new_run_id()
    directory = out or settings.home / "eval" / run_id
    started = time.monotonic()
    with gateway_for(settings, dataset, dataset_path.stem, url, directory / "gateway.log") as base:
        records = ask_all(
            settings, base, api_key, dataset, routes, max_tokens=max_tokens, concurrency=concurrency, k=k
        )
    info = RunInfo(
        run_id,
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        str(dataset_path),
        list(routes),
        url or "managed",
        max_tokens,
        0.0,
        len(dataset.questions),
        {route: price.model_dump(exclude_none=True) for route, price in prices.items()},
        notes={"k": k, "concurrency": concurrency, "seconds": round(time.monotonic() - started, 1)},
    )
    write_run(directory, info, records)
    summary = summarize_run(info, records, prices=prices, rate_rps=rate_rps)
    write_report(directory, summary, info)
    echo(format_table(summary))
    failed = sum(record.error is not None for record in records)
    if failed:
        echo(f"{failed} of {len(records)} requests failed (scored 0); see records.jsonl")
    echo(f"report: {directory / 'report.html'}")
    return directory


def load_prices(settings: Settings, prices_file: Path | None) -> dict[str, Price]:
    """The price table: `prices_file` (YAML: route or `*` → Price fields) if given, else the settings'."""
    if prices_file is None:
        return dict(settings.prices)
    import yaml

    raw = yaml.safe_load(prices_file.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{prices_file}: expected a mapping of route (or '*') to prices")
    return {str(route): Price(**fields) for route, fields in raw.items()}


def _load(path: Path, limit: int | None) -> Dataset:
    dataset = load_dataset(path)
    if limit is not None:
        dataset = Dataset(dataset.questions[:limit], dataset.documents)
    return dataset


def outcomes_by_route(always: Sequence[Record], never: Sequence[Record]) -> dict[str, list[Outcome]]:
    """Pair each question's `always` and `never` answers per route; failed or unsearchable ones are left
    out (a question with no relevance cannot inform a threshold)."""
    paired: dict[str, list[Outcome]] = {}
    without = {(r.route, r.question_id): r for r in never}
    for record in always:
        other = without.get((record.route, record.question_id))
        if other is None or record.error or other.error or record.relevance is None:
            continue
        paired.setdefault(record.route, []).append(
            Outcome(
                record.question_id,
                float(record.relevance),
                float(answer_contained(record.answer, record.answers)),
                float(answer_contained(other.answer, other.answers)),
            )
        )
    return paired


def calibrate_routes(
    settings: Settings,
    dataset_path: Path,
    routes: Sequence[str],
    *,
    url: str | None = None,
    api_key: str | None = None,
    out: Path | None = None,
    max_tokens: int = 64,
    concurrency: int = 4,
    held_out_share: float = 0.5,
    write: bool = True,
    echo: Echo = print,
) -> dict[str, Any]:
    """`lorag eval calibrate`: fit `auto` per route on the calibration split, report it against `never`
    and `always` on the held-out split, and publish the thresholds (a new version gateways pick up)."""
    from core.thresholds import write_thresholds

    dataset = _load(dataset_path, None)
    splits = split(dataset.questions, held_out_share)
    held_out_ids = {q.id for q in splits[HELD_OUT]}
    run_id = new_run_id()
    directory = out or settings.home / "eval" / f"calibrate-{run_id}"
    # Thresholds belong to the index the gateway searched: the dataset's own home when it brought passages.
    home = dataset_home_dir(settings, dataset_path.stem) if dataset.documents and not url else settings.home
    with gateway_for(settings, dataset, dataset_path.stem, url, directory / "gateway.log") as base:
        common: dict[str, Any] = {"max_tokens": max_tokens, "concurrency": concurrency}
        always = ask_all(
            settings, base, api_key, dataset, routes, retrieval="always", label="always", **common
        )
        never = ask_all(settings, base, api_key, dataset, routes, retrieval="never", label="never", **common)
    result: dict[str, Any] = {"dataset": str(dataset_path), "routes": {}}
    for route, outcomes in outcomes_by_route(always, never).items():
        calibration = [o for o in outcomes if o.question_id not in held_out_ids]
        held_out = [o for o in outcomes if o.question_id in held_out_ids]
        threshold = fit_threshold(calibration)
        result["routes"][route] = {
            "threshold": threshold,
            "signal": "bm25" if _search_mode(settings, route) == "bm25" else "dense",
            "questions": len(calibration),
            "calibration": _compare_policies(calibration, threshold),
            "held_out": _compare_policies(held_out, threshold),
        }
    directory.mkdir(parents=True, exist_ok=True)
    for name, records in (("always", always), ("never", never)):
        with (directory / f"records-{name}.jsonl").open("w") as handle:
            handle.writelines(json.dumps(asdict(record)) + "\n" for record in records)
    if write and result["routes"]:
        result["version"] = write_thresholds(
            home / "thresholds",
            result["routes"],
            embedder=embedder_name(settings.embedder),
            meta={"dataset": str(dataset_path), "run": str(directory), "held_out_share": held_out_share},
        )
    (directory / "calibration.json").write_text(json.dumps(result, indent=2))
    echo(format_calibration(result))
    return result


def _search_mode(settings: Settings, route: str) -> str:
    config = settings.routes.get(ModelRef.parse(route).name)
    return config.search if config else "dense"


def _compare_policies(outcomes: Sequence[Outcome], threshold: float) -> dict[str, Any]:
    """`never`, `always` and `auto` at `threshold` on the same questions (containment, 95% intervals)."""
    if not outcomes:
        return {"n": 0}
    return {
        "n": len(outcomes),
        "never": summarize([o.never for o in outcomes]),
        "always": summarize([o.always for o in outcomes]),
        "auto": summarize(auto_scores(outcomes, threshold)),
        "auto_retrieval_share": round(retrieval_share(outcomes, threshold), 4),
    }


def format_calibration(result: dict[str, Any]) -> str:
    """One table: per route, the threshold and never/always/auto on the held-out split."""
    lines = [
        f"{'route':<14} {'threshold':>9} {'n(cal)':>6} {'n(held)':>7}   held-out containment: "
        f"{'never':<20} {'always':<20} {'auto':<20} auto retrieves",
    ]
    for route, entry in result["routes"].items():
        held = entry["held_out"]
        cells = [interval(held.get(policy)) for policy in ("never", "always", "auto")]
        share = held.get("auto_retrieval_share")
        lines.append(
            f"{route:<14} {entry['threshold']:>9.3f} {entry['questions']:>6} {held.get('n', 0):>7}   "
            f"{'':<22}{cells[0]:<20} {cells[1]:<20} {cells[2]:<20} "
            f"{'' if share is None else f'{share:.0%}'}"
        )
    if result.get("version"):
        lines.append(f"thresholds version {result['version']} is current (gateways reload it)")
    return "\n".join(lines)


def compare(a: Path, b: Path, echo: Echo = print) -> dict[str, Any]:
    """`lorag eval compare A B`."""
    from eval.compare import compare_runs, format_comparison

    result = compare_runs(a, b)
    echo(format_comparison(result))
    return result


def report(
    directory: Path,
    settings: Settings,
    rate_rps: float = 10.0,
    prices_file: Path | None = None,
    echo: Echo = print,
) -> list[Path]:
    """Rebuild a run's summary and report from its records (e.g. after changing prices)."""
    from eval.records import read_run
    from eval.report import format_table, write_report
    from eval.summary import summarize_run

    info, records = read_run(directory)
    prices = load_prices(settings, prices_file) if prices_file or settings.prices else None  # else: the run's
    summary = summarize_run(info, records, prices=prices, rate_rps=rate_rps)
    echo(format_table(summary))
    return write_report(directory, summary, info)
