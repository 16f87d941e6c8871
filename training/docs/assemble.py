"""From grounded pairs to the training set: review marks, the eval hold-out, de-duplication, the leakage
check and the per-fact cap, applied in that order. Pure: pairs and marks in, each pair's fate out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from training.docs.pairs import ORIGINS, Pair
from training.docs.split import HELD_OUT_ORIGINS, EvalSplit
from training.docs.text import normalize, same_question, similar_question

ORIGIN_RANK = {origin: rank for rank, origin in enumerate(ORIGINS)}
"""Which pairs a fact keeps first when it has more than the cap: the teacher's, then the rules'."""


@dataclass(frozen=True)
class PairStatus:
    """What became of one grounded pair."""

    pair: Pair
    status: str
    """`train`, `eval` (it is an eval item), `held_out` (a rewording of an eval fact) or `rejected`."""
    reason: str = ""
    """For `rejected`: `reviewer`, `duplicate`, `leak` or `over_cap`."""
    review: str = ""
    """The reviewer's mark, if any."""


@dataclass(frozen=True)
class Assembly:
    """The training pairs, in a stable order, and the fate of every candidate."""

    train: list[Pair]
    statuses: list[PairStatus]


def assemble(
    candidates: Sequence[Pair],
    split: EvalSplit,
    marks: Mapping[str, str],
    common: frozenset[str],
    max_per_fact: int,
) -> Assembly:
    """Decide each pair's fate; accepted pairs are considered first, then by origin rank and id."""
    eval_ids = {item["metadata"]["pair_id"] for item in split.items}
    eval_questions = [item["question"] for item in split.items]
    order = sorted(
        {pair.id: pair for pair in candidates}.values(),
        key=lambda pair: (marks.get(pair.id) != "accept", ORIGIN_RANK[pair.origin], pair.id),
    )
    kept: dict[str, list[Pair]] = defaultdict(list)
    kept_questions: set[str] = set()
    statuses = []
    for pair in order:
        review = marks.get(pair.id, "")
        status, reason = _fate(pair, review, split, eval_ids, eval_questions, kept[pair.fact], kept_questions,
                               common, max_per_fact)  # fmt: skip
        if status == "train":
            kept[pair.fact].append(pair)
            kept_questions.add(normalize(pair.question))
        statuses.append(PairStatus(pair, status, reason, review))
    train = sorted(
        (status.pair for status in statuses if status.status == "train"),
        key=lambda p: (p.passage.chunk.source_id, p.passage.chunk.position, ORIGIN_RANK[p.origin], p.id),
    )
    return Assembly(train, statuses)


def _fate(
    pair: Pair,
    review: str,
    split: EvalSplit,
    eval_ids: set[str],
    eval_questions: Sequence[str],
    fact_pairs: Sequence[Pair],
    kept_questions: set[str],
    common: frozenset[str],
    max_per_fact: int,
) -> tuple[str, str]:
    if pair.id in eval_ids:
        return "eval", ""
    if review == "reject":
        return "rejected", "reviewer"
    if pair.fact in split.eval_facts and pair.origin in HELD_OUT_ORIGINS:
        return "held_out", ""
    # The same question for another fact would teach two replies to one prompt: first one wins.
    if normalize(pair.question) in kept_questions or any(
        same_question(pair.question, p.question) for p in fact_pairs
    ):
        return "rejected", "duplicate"
    if any(similar_question(pair.question, question, common) for question in eval_questions):
        return "rejected", "leak"
    if review != "accept" and len(fact_pairs) >= max_per_fact:
        return "rejected", "over_cap"
    return "train", ""


def leaks(train_questions: Sequence[str], eval_questions: Sequence[str], common: frozenset[str]) -> list[str]:
    """Training questions that are near-duplicates of an eval question (the final check; should be none)."""
    return [
        question
        for question in train_questions
        if any(similar_question(question, asked, common) for asked in eval_questions)
    ]
