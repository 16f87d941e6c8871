"""Retrieval-aware (RAFT) examples for document facts, when an evolving index is given.

Each training fact's best question is asked with distractors the evolving index retrieves for it; with
probability `p_gold` the fact's own chunk is among them (fetched from the documents: they need not be
indexed), otherwise the adapter answers from memory with only distractors in front of it. The work is
`training.raft.build_raft_file`'s: this module only turns pairs into its `RaftItem`s and chunks.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.types import Chunk
from training.docs.pairs import Pair, Passage
from training.raft import GoldChunks, RaftItem, RaftStats, Search, build_raft_file

RAFT_ORIGINS = ("teacher", "paraphrase", "rule:pattern")
"""Natural questions only: blanks and keyword lists are not what users ask with sources in the prompt."""


@dataclass(frozen=True)
class RaftSource:
    """Where distractors come from: a search over the evolving index, as the serving route searches."""

    search: Search
    k: int = 8
    """Hits retrieved per question."""
    n_distractors: int = 3
    p_gold: float = 0.8
    """Share of examples whose prompt holds the fact's own chunk."""
    seed: int = 0


def raft_items(train: Sequence[Pair]) -> list[RaftItem]:
    """One item per fact: its first natural question, answered with the document's sentence."""
    items: dict[str, RaftItem] = {}
    for origin in RAFT_ORIGINS:
        for pair in train:
            if pair.origin == origin and pair.fact not in items:
                items[pair.fact] = RaftItem(pair.question, pair.reply, (pair.passage.chunk.source_id,))
    return list(items.values())


def gold_chunk(passage: Passage) -> Chunk:
    """The passage as a source chunk whose text holds each reply verbatim (sentences, Markdown removed)."""
    chunk = passage.chunk
    return Chunk(chunk.chunk_id, chunk.source_id, " ".join(passage.sentences), chunk.position, chunk.title)


def raft_records(
    train: Sequence[Pair], passages: Sequence[Passage], source: RaftSource, work_dir: Path
) -> tuple[list[dict[str, Any]], RaftStats]:
    """The RAFT conversations for `train`'s facts, and `build_raft_file`'s counts."""
    store = GoldChunks(lambda: [gold_chunk(passage) for passage in passages])
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".raft-") as temp:
        path = Path(temp) / "raft.jsonl"
        stats = build_raft_file(
            raft_items(train),
            path,
            source.search,
            store,
            k=source.k,
            n_distractors=source.n_distractors,
            p_gold=source.p_gold,
            seed=source.seed,
        )
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return records, stats
