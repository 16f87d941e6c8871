"""The refresh scenario: facts change in the corpus, `lorag index refresh` runs, and the retrieval routes
give the new answers with the same adapter version — no retraining.

The scenario lives in `eval/datasets/demo_refresh/`: `changes.json` (exact text replacements in demo
corpus documents) and `questions.jsonl` (`answers` are the new values, `metadata.before` the old ones).
It runs on a copy of the demo corpus in `<home>/eval-homes/refresh-scenario/`, never on the user's index.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import httpx

from core.settings import Settings
from eval.bootstrap import summarize
from eval.datasets import Dataset, load_dataset
from eval.gateway import managed_gateway
from eval.metrics import answer_contained
from eval.records import Record
from eval.tables import interval

SCENARIO_DIR = Path(__file__).parent / "datasets" / "demo_refresh"


class ScenarioError(ValueError):
    """The scenario's changes no longer match the corpus (a replaced text is missing)."""


def apply_changes(corpus: Path, changes: dict[str, Any]) -> list[str]:
    """Apply `changes["edits"]` to the documents under `corpus`; returns the changed source ids. Every
    replaced text must be present, so a drifted corpus fails loudly instead of testing nothing."""
    changed = []
    for edit in changes["edits"]:
        path = corpus / edit["source"]
        text = path.read_text()
        for old, new in edit["replace"]:
            if old not in text:
                raise ScenarioError(f"{edit['source']}: text to replace not found: {old!r}")
            text = text.replace(old, new)
        path.write_text(text)
        changed.append(edit["source"])
    return changed


def score(records: Sequence[Record], route: str, answers: Callable[[Record], list[str]]) -> dict[str, Any]:
    """Containment of `answers(record)` over one route's records, with its interval."""
    mine = [r for r in records if r.route == route]
    return dict(summarize([float(not r.error and answer_contained(r.answer, answers(r))) for r in mine]))


def run_refresh_scenario(
    settings: Settings,
    routes: Sequence[str],
    *,
    out: Path,
    max_tokens: int = 48,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Ask, change the facts, refresh, ask again; report old/new answer rates and what served them."""
    from eval.commands import ask_all
    from retrieval.build import DEMO_CORPUS, refresh
    from training.demo_adapter import register_demo_adapter

    home = settings.home / "eval-homes" / "refresh-scenario"
    shutil.rmtree(home, ignore_errors=True)
    corpus = home / "corpus"
    shutil.copytree(DEMO_CORPUS, corpus)
    local = settings.model_copy(update={"home": home, "corpus_dir": corpus})
    refresh(local)
    register_demo_adapter(local.adapters_dir, local.cache_dir)
    questions = load_dataset(SCENARIO_DIR / "questions.jsonl").questions
    before_set = Dataset([replace(q, answers=[q.metadata["before"]]) for q in questions])
    changes = json.loads((SCENARIO_DIR / "changes.json").read_text())
    with managed_gateway(home, out / "gateway.log", env={"LORAG_SNAPSHOT_POLL_S": "0.5"}) as url:
        # One request at a time: vLLM's batching changes bf16 numerics, so answers to one prompt can differ
        # between a busy and an idle server; before and after must differ only by the refresh.
        common: dict[str, Any] = {"max_tokens": max_tokens, "concurrency": 1}
        before = ask_all(local, url, None, before_set, routes, label="before", **common)
        apply_changes(corpus, changes)
        result = refresh(local)
        echo(f"refresh: {result.summary()}")
        new_snapshot = _wait_for_snapshot(url, before)
        after = ask_all(local, url, None, Dataset(questions), routes, label="after", **common)
    old = {q.id: [q.metadata["before"]] for q in questions}
    report: dict[str, Any] = {"snapshot_after": new_snapshot, "routes": {}}
    for route in routes:
        report["routes"][route] = {
            "followed": followed(before, after, route),
            "old_answer_before_refresh": score(before, route, lambda r: r.answers),
            "new_answer_after_refresh": score(after, route, lambda r: r.answers),
            "old_answer_after_refresh": score(after, route, lambda r: old[r.question_id]),
            "adapters": sorted({str(r.adapter) for r in before + after if r.route == route}),
            "snapshots": sorted({str(r.snapshot) for r in before + after if r.route == route}),
        }
    out.mkdir(parents=True, exist_ok=True)
    for name, records in (("before", before), ("after", after)):
        (out / f"records-{name}.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in records))
    (out / "scenario.json").write_text(json.dumps(report, indent=2))
    echo(format_scenario(report))
    return report


def followed(before: Sequence[Record], after: Sequence[Record], route: str) -> dict[str, Any]:
    """Of the questions a route answered right before the change (old value), how many it answers right
    after (new value): the refresh's own effect, apart from how often the model gets a question right."""
    right_before = {r.question_id for r in before if r.route == route and _right(r)}
    right_after = {r.question_id for r in after if r.route == route and _right(r)}
    share = len(right_before & right_after) / len(right_before) if right_before else None
    return {
        "right_before": len(right_before),
        "also_right_after": len(right_before & right_after),
        "share": share,
    }


def _right(record: Record) -> bool:
    return not record.error and answer_contained(record.answer, record.answers)


def _wait_for_snapshot(url: str, before: Sequence[Record], timeout_s: float = 60) -> str | None:
    """Until the gateway reports a snapshot other than the one the first answers came from."""
    old = {r.snapshot for r in before if r.snapshot}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        snapshot = httpx.get(f"{url}/ready", timeout=10).json().get("snapshot")
        if snapshot and snapshot not in old:
            return str(snapshot)
        time.sleep(0.5)
    raise ScenarioError(f"the gateway still serves {old} {timeout_s:.0f} s after the refresh")


def format_scenario(report: dict[str, Any]) -> str:
    lines = [
        f"{'route':<12} {'old answer, before':<22} {'new answer, after':<22} "
        f"{'old answer, after':<22} {'followed':<9} adapter"
    ]
    for route, entry in report["routes"].items():
        cells = [
            interval(entry[key])
            for key in ("old_answer_before_refresh", "new_answer_after_refresh", "old_answer_after_refresh")
        ]
        follow = entry["followed"]
        moved = f"{follow['also_right_after']}/{follow['right_before']}"
        adapters = ", ".join(entry["adapters"])
        lines.append(f"{route:<12} {cells[0]:<22} {cells[1]:<22} {cells[2]:<22} {moved:<9} {adapters}")
    lines.append("followed: of the questions answered right before the change, those answered right after it")
    return "\n".join(lines)
