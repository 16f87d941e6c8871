"""Retrieval policy: whether a request's prompt gets retrieved sources, and why (pure functions).

`never` and `always` need no explanation beyond themselves. `auto` searches, then keeps the sources only when
the top hit is relevant enough: its dense cosine similarity, or for BM25-only routes its score squashed into
0..1 (`s / (s + BM25_SCALE)`). The rank-fusion score of hybrid search is never used: it says where a chunk
ranked, not how well it matched, so the best hit of an off-topic query gets the same score as a perfect one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.settings import BM25_SCALE
from core.types import Hit

POLICIES = ("never", "always", "auto")


@dataclass(frozen=True)
class Threshold:
    """An `auto` threshold and where it came from (`route config`, `calibrated <version>`, `default`)."""

    value: float
    source: str


@dataclass(frozen=True)
class Decision:
    """What a request's retrieval policy decided; reported in the response's `lorag` extension."""

    policy: str
    retrieve: bool
    """Whether to search the index at all (`never` does not)."""
    use: bool
    """Whether the sources go into the prompt."""
    reason: str
    score: float | None = None
    threshold: float | None = None
    threshold_source: str | None = None

    def report(self) -> dict[str, Any]:
        """The JSON fields: `policy`, `mode` (`rag` or `none`), `reason`; when the index was searched, the
        best hit's `relevance` (what `auto` compares; calibration reads it from `always` responses); for
        `auto` the threshold and where it came from."""
        fields: dict[str, Any] = {
            "policy": self.policy,
            "mode": "rag" if self.use else "none",
            "reason": self.reason,
        }
        if self.retrieve:
            fields["relevance"] = None if self.score is None else round(self.score, 4)
        if self.policy == "auto":
            fields.update(threshold=self.threshold, threshold_source=self.threshold_source)
        return fields


def before_search(policy: str, has_query: bool) -> Decision:
    """The decision that can be made without searching: `never`, or nothing to search with."""
    if not has_query:
        return Decision(policy, False, False, "no user text to search with")
    if policy == "never":
        return Decision(policy, False, False, "policy never")
    if policy == "always":
        return Decision(policy, True, True, "policy always")
    return Decision(policy, True, False, "pending")


def relevance(hit: Hit) -> float | None:
    """The score `auto` thresholds for one hit: dense cosine when the search computed it, else squashed
    BM25."""
    if "dense" in hit.scores:
        return float(hit.scores["dense"])
    if "bm25" in hit.scores:
        bm25 = max(float(hit.scores["bm25"]), 0.0)
        return bm25 / (bm25 + BM25_SCALE)
    return None


def after_search(decision: Decision, hits: Sequence[Hit], threshold: Threshold) -> Decision:
    """`auto`: keep the sources when the best hit's relevance reaches the threshold. Every policy that
    searched records that relevance."""
    # The best match among the hits: with hybrid search, fusion may rank a weaker cosine first.
    scores = [score for score in map(relevance, hits) if score is not None]
    score = max(scores) if scores else None
    if decision.policy != "auto":
        return replace(decision, score=score)
    if not hits:
        return Decision("auto", True, False, "no hits", None, threshold.value, threshold.source)
    if score is None:
        return Decision("auto", True, False, "the search gave no thresholdable score", None, threshold.value)
    use = score >= threshold.value
    comparison = ">=" if use else "<"
    reason = f"top relevance {score:.3f} {comparison} threshold {threshold.value:.3f} ({threshold.source})"
    return Decision("auto", True, use, reason, score, threshold.value, threshold.source)
