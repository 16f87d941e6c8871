"""The frozen eval set: split by fact, carried over between runs, retired when its source chunk changes.

Whether a fact is held out for evaluation is a function of its content hash alone (`in_eval`), so it does
not move when documents are added, removed or renamed, when the teacher changes, or next quarter. An eval
item, once written, stays as it is while its source chunk is unchanged (a new teacher does not rewrite the
test); when the chunk changes the item is retired and listed in the data card.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.docs.errors import DocsDataError
from training.docs.pairs import Pair

EVAL_ORIGINS = ("teacher", "rule:pattern")
"""Questions that may become eval items, best first: independent phrasings, not blanks or keyword lists."""
HELD_OUT_ORIGINS = frozenset({"teacher", "paraphrase", "rule:pattern", "rule:keywords"})
"""Questions of an eval fact that never enter training: each is the eval question or a rewording of it. The
other teacher-free kinds (blanks, wh-in-place, term and heading questions) still teach the fact."""


def in_eval(fact: str, share: float) -> bool:
    """Whether the fact (a hex `fact_key`) is held out: its first 8 hex digits as a fraction below `share`."""
    return int(fact[:8], 16) / 0x1_0000_0000 < share


@dataclass(frozen=True)
class EvalSplit:
    """Which facts are evaluated, with what items, and which earlier items were retired."""

    items: list[dict[str, Any]]
    """Eval records (carried-over first, then new ones), in the lorag eval JSONL format."""
    retired: list[dict[str, Any]]
    """Earlier items whose source chunk changed or that a reviewer rejected, with `retired_because`."""
    eval_facts: frozenset[str]


def eval_record(pair: Pair, *, indexed: bool) -> dict[str, Any]:
    """A pair as an eval item: its source chunk, sentence and fact in `metadata` (all strings)."""
    chunk = pair.passage.chunk
    return {
        "id": f"docs-{pair.fact[:12]}",
        "question": pair.question,
        "answers": [pair.answer],
        "kind": "static",
        "gold_sources": [chunk.source_id] if indexed else [],
        "metadata": {
            "source_id": chunk.source_id,
            "chunk_id": chunk.chunk_id,
            "chunk_hash": pair.passage.content_hash,
            "chunk_text": chunk.text,
            "sentence": pair.sentence,
            "fact": pair.fact,
            "pair_id": pair.id,
            "origin": pair.origin,
        },
    }


def choose_eval(
    candidates: Sequence[Pair],
    previous: Sequence[dict[str, Any]],
    live_chunks: set[str],
    rejected_ids: set[str],
    *,
    share: float,
    indexed: bool = False,
) -> EvalSplit:
    """Carry over earlier items whose chunk is unchanged, and add one item per new eval fact.

    `candidates` are grounded pairs of any origin; only `EVAL_ORIGINS` become items (a teacher question
    before a pattern one, then the lowest pair id, so the choice does not depend on order). A fact whose
    hash says "eval" but that has no such question stays in training: holding it out would test nothing.
    """
    kept, retired = carry_over(previous, live_chunks, rejected_ids)
    facts = {item["metadata"]["fact"] for item in kept}
    rank = {origin: index for index, origin in enumerate(EVAL_ORIGINS)}
    best: dict[str, Pair] = {}
    for pair in candidates:
        if pair.origin not in rank or pair.id in rejected_ids or not pair.answer or pair.fact in facts:
            continue
        if not in_eval(pair.fact, share):
            continue
        current = best.get(pair.fact)
        if current is None or (rank[pair.origin], pair.id) < (rank[current.origin], current.id):
            best[pair.fact] = pair
    new = [eval_record(best[fact], indexed=indexed) for fact in sorted(best)]
    return EvalSplit([*kept, *new], retired, frozenset(facts | set(best)))


def carry_over(
    previous: Iterable[dict[str, Any]], live_chunks: set[str], rejected_ids: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(items kept as they are, items retired with the reason) from the last run's eval file."""
    kept, retired = [], []
    for item in previous:
        metadata = item.get("metadata", {})
        if metadata.get("pair_id") in rejected_ids:
            retired.append({**item, "retired_because": "rejected by a reviewer"})
        elif metadata.get("chunk_hash") in live_chunks:
            kept.append(item)
        else:
            retired.append(
                {**item, "retired_because": f"source chunk of {metadata.get('source_id')} changed"}
            )
    return kept, retired


def read_eval_file(path: Path) -> list[dict[str, Any]]:
    """The eval items a previous run wrote (none if there is no file); a clear error for a damaged one."""
    if not path.is_file():
        return []
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            item["metadata"]["fact"], item["metadata"]["chunk_hash"]  # noqa: B018 - both must be present
        except (ValueError, KeyError, TypeError):
            raise DocsDataError(
                f"{path}:{number}: not an eval item written by this tool (move the file away to start afresh)"
            ) from None
        items.append(item)
    return items
