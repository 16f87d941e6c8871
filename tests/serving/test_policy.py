"""Retrieval policy decisions (pure) and the thresholds the gateway follows."""

from __future__ import annotations

import json
import os

import pytest

from core.settings import DEFAULT_AUTO_THRESHOLD
from core.thresholds import FORMAT, ThresholdFileError, read_current, write_thresholds
from core.types import Chunk, Hit
from serving.policy import Threshold, after_search, before_search, relevance
from serving.thresholds import ThresholdBook


def hit(score: float, **scores: float) -> Hit:
    return Hit(Chunk("c", "s.md", "text"), score, scores)


def test_never_and_always_decide_before_searching():
    assert before_search("never", True).retrieve is False
    always = before_search("always", True)
    assert always.retrieve and always.use and always.report()["mode"] == "rag"
    nothing = before_search("always", False)
    assert not nothing.retrieve and nothing.reason == "no user text to search with"


def test_auto_uses_sources_only_above_threshold():
    pending = before_search("auto", True)
    assert pending.retrieve and not pending.use
    high = after_search(pending, [hit(0.7, dense=0.7)], Threshold(0.5, "default"))
    low = after_search(pending, [hit(0.3, dense=0.3)], Threshold(0.5, "default"))
    assert high.use and high.report()["mode"] == "rag" and high.report()["relevance"] == 0.7
    assert not low.use and low.report()["mode"] == "none"
    assert "0.300 < threshold 0.500 (default)" in low.reason
    assert after_search(pending, [hit(0.5, dense=0.5)], Threshold(0.5, "x")).use  # at the threshold: use
    always = after_search(before_search("always", True), [hit(0.3, dense=0.3)], Threshold(0.5, "default"))
    assert always.use and always.report()["relevance"] == 0.3 and "threshold" not in always.report()


def test_auto_never_thresholds_the_rank_fusion_score():
    # Hybrid: fusion ranked a weak cosine first; the best cosine among the hits decides, not rrf.
    hits = [hit(0.033, rrf=0.033, dense=0.2), hit(0.032, rrf=0.032, dense=0.66, bm25=4.0)]
    decision = after_search(before_search("auto", True), hits, Threshold(0.5, "default"))
    assert decision.use and decision.score == pytest.approx(0.66)
    assert relevance(hit(0.03, rrf=0.03)) is None
    assert after_search(before_search("auto", True), [hit(0.03, rrf=0.03)], Threshold(0.1, "d")).use is False


def test_bm25_relevance_is_squashed_into_0_1():
    assert relevance(hit(10.0, bm25=10.0)) == pytest.approx(0.5)
    assert relevance(hit(0.0, bm25=0.0)) == 0.0
    assert 0.9 < relevance(hit(200.0, bm25=200.0)) < 1.0  # type: ignore[operator]


def test_thresholds_file_round_trip_and_current_pointer(tmp_path):
    first = write_thresholds(tmp_path, {"demo+rag": {"threshold": 0.4, "questions": 20}}, embedder="e")
    second = write_thresholds(tmp_path, {"demo+rag": {"threshold": 0.6}}, embedder="e")
    assert first != second and os.readlink(tmp_path / "current") == f"{second}.json"
    loaded = read_current(tmp_path)
    assert loaded is not None and loaded.routes == {"demo+rag": 0.6} and loaded.version == second
    payload = json.loads((tmp_path / f"{first}.json").read_text())
    assert payload["format"] == FORMAT and payload["routes"]["demo+rag"]["questions"] == 20


@pytest.mark.parametrize("value", [1.5, -0.1, "high", None])
def test_bad_thresholds_are_never_written(tmp_path, value):
    with pytest.raises(ThresholdFileError, match="demo"):
        write_thresholds(tmp_path, {"demo": {"threshold": value}}, embedder="e")
    assert read_current(tmp_path) is None


def test_threshold_precedence_route_config_then_calibrated_then_default(tmp_path):
    book = ThresholdBook(tmp_path, "e")
    assert book.threshold("demo+rag", None) == Threshold(DEFAULT_AUTO_THRESHOLD, "default")
    version = write_thresholds(tmp_path, {"demo+rag": {"threshold": 0.42}}, embedder="e")
    assert book.reload_if_changed() is True
    assert book.threshold("demo+rag", None) == Threshold(0.42, f"calibrated {version}")
    assert book.threshold("base+rag", None).source == "default"
    assert book.threshold("demo+rag", 0.9) == Threshold(0.9, "route config")
    assert book.reload_if_changed() is False  # unchanged pointer: nothing re-read


def test_thresholds_from_another_embedder_or_a_broken_file_are_ignored(tmp_path):
    book = ThresholdBook(tmp_path, "all-MiniLM-L6-v2")
    write_thresholds(tmp_path, {"r": {"threshold": 0.3}}, embedder="another-embedder")
    assert book.reload_if_changed() is False and book.threshold("r", None).source == "default"
    good = write_thresholds(tmp_path, {"r": {"threshold": 0.3}}, embedder="all-MiniLM-L6-v2")
    book.reload_if_changed()
    (tmp_path / "broken.json").write_text("{not json")
    os.replace(_link(tmp_path, "broken.json"), tmp_path / "current")
    assert book.reload_if_changed() is False
    assert book.threshold("r", None).source == f"calibrated {good}"  # the last good file keeps serving


def _link(directory, target):
    link = directory / ".tmp-link"
    link.symlink_to(target)
    return link
