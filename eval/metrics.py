"""Answer, retrieval and serving metrics: pure functions.

The retrieval metrics (`recall_at_k`, `mrr`) live in `retrieval.metrics`, beside the refresh gate that uses
them, and are re-exported here so that the reports and the gate can never disagree on what "recall" means;
`percentile` is `core.stats.percentile`.

Each aggregate returns `{"score": mean, "individual_scores": [...]}` so callers can report both, and can
put a bootstrap interval on the mean (`eval.bootstrap`). Exact match and token F1 normalise answers as the
official SQuAD script does, so their numbers compare with published ones; containment keeps lorag's own
`normalize`, which keeps punctuation, so that an answer such as "$319" or "LX-47" is looked for as written.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

from core.stats import percentile
from retrieval.metrics import mrr, recall_at_k

__all__ = [
    "answer_contained", "containment", "exact_match", "exact_match_score", "f1_score", "latency",
    "lexical_support", "lexical_support_score", "mrr", "normalize", "percentile", "recall_at_k",
    "squad_normalize", "token_f1", "tokens_per_request",
]  # fmt: skip

_SPACE = re.compile(r"\s+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize(text: str) -> str:
    """Lower-case, Unicode-normalised (NFKC), with runs of whitespace collapsed to one space."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def answer_contained(prediction: str, answers: Sequence[str]) -> bool:
    """True if any acceptable answer appears in the prediction (after `normalize`)."""
    text = normalize(prediction)
    return any(normalize(answer) in text for answer in answers if answer.strip())


def containment(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Share of predictions that contain one of their acceptable answers."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} answer lists")
    scores = [1.0 if answer_contained(p, a) else 0.0 for p, a in zip(predictions, answers, strict=True)]
    return {"score": sum(scores) / len(scores) if scores else 0.0, "individual_scores": scores}


# ---- SQuAD-style exact match and token F1 -----------------------------------------------------------------


def squad_normalize(text: str) -> str:
    """The SQuAD evaluation script's normalisation: lower-case, drop ASCII punctuation, drop the articles
    a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals one of the normalised answers, else 0.0."""
    text = squad_normalize(prediction)
    return 1.0 if any(text == squad_normalize(answer) for answer in answers) else 0.0


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    """Token F1 of the prediction against its best-matching answer (0.0 when there are no answers)."""
    return max((_token_f1(prediction, answer) for answer in answers), default=0.0)


def _token_f1(prediction: str, answer: str) -> float:
    predicted, expected = squad_normalize(prediction).split(), squad_normalize(answer).split()
    if not predicted or not expected:
        # As SQuAD 2.0 scores it: two empty answers agree, one empty one scores nothing.
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def exact_match(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Share of predictions that equal one of their acceptable answers after `squad_normalize`."""
    _same_length(predictions, answers, "predictions", "answer lists")
    return _aggregate([exact_match_score(p, a) for p, a in zip(predictions, answers, strict=True)])


def token_f1(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Mean over predictions of the token F1 against the best of their acceptable answers."""
    _same_length(predictions, answers, "predictions", "answer lists")
    return _aggregate([f1_score(p, a) for p, a in zip(predictions, answers, strict=True)])


# ---- Lexical support --------------------------------------------------------------------------------------


def lexical_support_score(prediction: str, retrieved_texts: Sequence[str]) -> float:
    """The share of the prediction's tokens (after `squad_normalize`, repeats counted) that occur anywhere
    in the retrieved texts. 0.0 for an empty prediction, which nothing supports.

    It is lexical overlap, not faithfulness: a reply can copy words from its sources and still misstate them.
    """
    tokens = squad_normalize(prediction).split()
    if not tokens:
        return 0.0
    vocabulary = {token for text in retrieved_texts for token in squad_normalize(text).split()}
    return sum(token in vocabulary for token in tokens) / len(tokens)


def lexical_support(predictions: Sequence[str], retrieved: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Mean `lexical_support_score` of each prediction against the texts of the chunks retrieved for it."""
    _same_length(predictions, retrieved, "predictions", "retrieved lists")
    return _aggregate([lexical_support_score(p, r) for p, r in zip(predictions, retrieved, strict=True)])


# ---- Serving: latency and tokens --------------------------------------------------------------------------


def latency(seconds: Sequence[float]) -> dict[str, Any]:
    """Request latencies: the mean as `score`, and `p50` and `p95` (see `percentile`); 0.0 when empty."""
    if not seconds:
        return {"score": 0.0, "p50": 0.0, "p95": 0.0, "individual_scores": []}
    values = [float(value) for value in seconds]
    return {**_aggregate(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}


def tokens_per_request(prompt_tokens: Sequence[int], completion_tokens: Sequence[int]) -> dict[str, Any]:
    """Total tokens per request as `score` and `individual_scores`, with the `prompt` and `completion` means
    (what prices are quoted in)."""
    _same_length(prompt_tokens, completion_tokens, "prompt counts", "completion counts")
    totals = [float(p + c) for p, c in zip(prompt_tokens, completion_tokens, strict=True)]
    count = len(totals)
    return {
        **_aggregate(totals),
        "prompt": sum(prompt_tokens) / count if count else 0.0,
        "completion": sum(completion_tokens) / count if count else 0.0,
    }


def _aggregate(scores: list[float]) -> dict[str, Any]:
    return {"score": sum(scores) / len(scores) if scores else 0.0, "individual_scores": scores}


def _same_length(first: Sequence[Any], second: Sequence[Any], first_name: str, second_name: str) -> None:
    if len(first) != len(second):
        raise ValueError(f"{len(first)} {first_name} for {len(second)} {second_name}")
