"""Router calibration (pure): fit each route's `auto` threshold so that it retrieves where retrieval helps.

Every question is answered twice per route, with retrieval forced on (`always`) and off (`never`); its label
is score(always) − score(never). With temperature 0 the two answers are what `auto` would give on either
side of the threshold, so `auto` at threshold t scores, per question, score(always) if the best hit's
relevance ≥ t else score(never). The threshold is fitted on a calibration split and reported on a held-out
split, against `never` and `always`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from eval.datasets import Question

CALIBRATION, HELD_OUT = "calibration", "held_out"


@dataclass(frozen=True)
class Outcome:
    """One question on one route: the best hit's relevance and the score with and without sources."""

    question_id: str
    relevance: float
    always: float
    never: float

    @property
    def gain(self) -> float:
        """What retrieval adds on this question (the calibration label)."""
        return self.always - self.never


def split(questions: Sequence[Question], held_out_share: float = 0.5) -> dict[str, list[Question]]:
    """Calibration and held-out questions. A question's own `split` wins; the others are assigned by a hash
    of their id (stable across runs and machines), separately within each kind so both splits hold every
    kind."""
    result: dict[str, list[Question]] = {CALIBRATION: [], HELD_OUT: []}
    by_kind: dict[str, list[Question]] = {}
    for question in questions:
        if question.split in result:
            result[question.split].append(question)
        else:
            by_kind.setdefault(question.kind, []).append(question)
    for members in by_kind.values():
        ordered = sorted(members, key=lambda q: hashlib.sha256(q.id.encode()).hexdigest())
        cut = round(len(ordered) * (1 - held_out_share))
        result[CALIBRATION].extend(ordered[:cut])
        result[HELD_OUT].extend(ordered[cut:])
    return result


def auto_scores(outcomes: Sequence[Outcome], threshold: float) -> list[float]:
    """Per question, the score `auto` gets at `threshold`."""
    return [o.always if o.relevance >= threshold else o.never for o in outcomes]


def retrieval_share(outcomes: Sequence[Outcome], threshold: float) -> float:
    return sum(o.relevance >= threshold for o in outcomes) / len(outcomes) if outcomes else 0.0


def fit_threshold(outcomes: Sequence[Outcome]) -> float:
    """The threshold that maximises `auto`'s mean score on `outcomes`.

    Only thresholds between observed relevances change anything, so the candidates are the midpoints
    between consecutive distinct relevances (plus one below all and one above all). Among equally good
    candidates the highest wins: it retrieves least, so it costs fewest prompt tokens.
    """
    if not outcomes:
        raise ValueError("no calibration outcomes: every question failed or none was asked")
    values = sorted({round(o.relevance, 6) for o in outcomes})
    candidates = [max(0.0, values[0] - 0.01)]
    candidates += [(low + high) / 2 for low, high in zip(values, values[1:], strict=False)]
    candidates.append(min(1.0, values[-1] + 0.01))
    best = max(candidates, key=lambda t: (sum(auto_scores(outcomes, t)), t))
    return round(best, 4)
