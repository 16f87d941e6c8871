"""`lorag bench from-docs`: its data step on the shipped handbook (all cached: no teacher), its verdicts
and its table."""

from __future__ import annotations

import json
from pathlib import Path

from bench.from_docs import _data_step, format_results, verdicts
from core.settings import Settings
from training.demo_data import DEMO_DIR


def scores(**means: float) -> dict[str, dict[str, object]]:
    kinds = {
        "base": "static",
        "demo": "static",
        "docs": "static",
        "demo+rag": "evolving",
        "docs+rag": "evolving",
    }
    n = {"static": 24, "evolving": 12}
    return {
        route: {"kind": kinds[route], "errors": 0,
                "containment": {"mean": mean, "low": mean - 0.1, "high": mean + 0.1, "n": n[kinds[route]]}}
        for route, mean in means.items()
    }  # fmt: skip


def test_the_data_step_rebuilds_the_shipped_data_from_its_cache(tmp_path: Path) -> None:
    result = _data_step(Settings(home=tmp_path / "home"), tmp_path, raft=False)
    shipped = json.loads((DEMO_DIR / "from_docs" / "card.json").read_text())["counts"]
    assert result["calls_made"] == 0 and result["calls_planned"] == 250
    assert result["train_examples"] == shipped["train_examples"]["total"]
    assert (tmp_path / "data" / "train.jsonl").read_text() == (
        DEMO_DIR / "from_docs" / "train.jsonl"
    ).read_text()


def test_raft_examples_retrieve_from_the_bench_homes_demo_index(tmp_path: Path) -> None:
    result = _data_step(Settings(home=tmp_path / "home"), tmp_path, raft=True)
    assert result["calls_made"] == 0 and result["raft_examples"] > 0
    assert (tmp_path / "home" / "index" / "current").exists()


def test_verdicts_follow_the_issue_targets() -> None:
    met = verdicts(scores(base=0.0, demo=0.92, docs=0.83, **{"demo+rag": 0.75, "docs+rag": 0.6667}))
    assert all(v["met"] for v in met.values())
    assert abs(met["docs vs demo (static)"]["value"] - 0.83 / 0.92) < 1e-9
    assert met["docs+rag vs demo+rag (evolving)"]["value"] == -1
    missed = verdicts(scores(base=0.25, demo=0.92, docs=0.5, **{"demo+rag": 0.75, "docs+rag": 0.5}))
    assert not any(v["met"] for v in missed.values())


def test_the_table_shows_each_route_and_verdict(tmp_path: Path) -> None:
    state = scores(base=0.0, demo=0.92, docs=0.83, **{"demo+rag": 0.75, "docs+rag": 0.75})
    results = {
        "eval": state,
        "verdicts": verdicts(state),
        "data": {"summary": "4 documents"},
        "train": {"examples": 239, "epochs": 12, "seconds": 700.0, "tokens_per_s": 300.0},
        "edit": {
            "page": "p.md",
            "calls_made": 12,
            "first_run_calls": 250,
            "eval_items_retired": 1,
            "seconds": 9,
        },
    }
    text = "\n".join(format_results(results, tmp_path))
    assert "docs       static (24)     0.83 [0.73, 0.93]" in text and "22/24" in text
    assert "docs vs demo (static): 0.90x (target >= 0.65x): met" in text
    assert "docs+rag vs demo+rag (evolving): +0 (target within 1 of 12): met" in text
    assert "12 teacher calls made (first run: 250)" in text
