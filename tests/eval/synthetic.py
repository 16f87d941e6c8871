"""A small evaluation run to test summaries, reports and comparisons on, with numbers computable by hand.

Four questions (two `static`, two `evolving`) on two routes:

- s1 (static): both routes answer "Marisol Okafor": right and exact; demo+rag cites `about.md#history`
  (no gold sources, so no retrieval score).
- s2 (static): demo answers "It was founded in Brannock Falls." (contains the answer; exact match 0; F1
  2/6 precision, 1 recall = 0.5); demo+rag answers "Quillfern" (wrong) with mode `none`, as if an `auto`
  policy had not retrieved.
- e1 (evolving, gold `tents`): demo answers "$299" (wrong); demo+rag "$319" (right), citing
  `catalog.jsonl#old-tents` (no match) then `catalog.jsonl#tents`: recall 1, reciprocal rank 1/2.
- e2 (evolving, gold `returns` and `policy`): demo's request failed (scores 0); demo+rag "45 days"
  (right), citing the bare `returns`: recall 1/2, reciprocal rank 1.
"""

from __future__ import annotations

from typing import Any

from eval.records import Record, RunInfo

QUESTIONS: dict[str, dict[str, Any]] = {
    "s1": {"kind": "static", "question": "Who founded Lumora?", "answers": ["Marisol Okafor"]},
    "s2": {"kind": "static", "question": "Where was Lumora founded?", "answers": ["Brannock Falls"]},
    "e1": {
        "kind": "evolving",
        "question": "What does the tent cost?",
        "answers": ["$319"],
        "gold_sources": ["tents"],
    },
    "e2": {
        "kind": "evolving",
        "question": "How long is the return window?",
        "answers": ["45 days"],
        "gold_sources": ["returns", "policy"],
    },
}


def record(question_id: str, route: str, answer: str, **fields: Any) -> Record:
    """A record for one of `QUESTIONS`; `fields` override the defaults (50 prompt, 10 completion tokens)."""
    defaults: dict[str, Any] = {
        "prompt_tokens": 50,
        "completion_tokens": 10,
        "latency_s": 1.0,
        "mode": "none",
    }
    return Record(
        question_id=question_id,
        route=route,
        answer=answer,
        **QUESTIONS[question_id],
        **{**defaults, **fields},
    )


def cite(source: str, text: str) -> dict[str, Any]:
    return {"source": source, "chunk_id": f"{source}:0", "score": 0.5, "text": text}


def demo_records() -> list[Record]:
    return [
        record("s1", "demo", "Marisol Okafor", latency_s=1.0),
        record("s2", "demo", "It was founded in Brannock Falls.", latency_s=2.0),
        record("e1", "demo", "$299", latency_s=3.0),
        record(
            "e2", "demo", "", error="upstream timed out", latency_s=0.1, prompt_tokens=0, completion_tokens=0
        ),
    ]


def rag_records() -> list[Record]:
    rag: dict[str, Any] = {"mode": "rag", "prompt_tokens": 250, "latency_s": 2.0, "ttft_s": 0.5}
    return [
        record(
            "s1",
            "demo+rag",
            "Marisol Okafor",
            citations=[cite("about.md#history", "Marisol Okafor founded it")],
            **rag,
        ),
        record("s2", "demo+rag", "Quillfern", latency_s=2.0),
        record(
            "e1",
            "demo+rag",
            "$319",
            citations=[
                cite("catalog.jsonl#old-tents", "old tents"),
                cite("catalog.jsonl#tents", "The tent costs $319"),
            ],
            **rag,
        ),
        record("e2", "demo+rag", "45 days", citations=[cite("returns", "Returns within 45 days")], **rag),
    ]


def run_info(**fields: Any) -> RunInfo:
    defaults: dict[str, Any] = {
        "run_id": "run-a",
        "created_at": "2025-01-01T00:00:00Z",
        "dataset": "synthetic",
        "routes": ["demo", "demo+rag"],
        "gateway": "managed",
        "max_tokens": 64,
        "questions": 4,
    }
    return RunInfo(**{**defaults, **fields})
