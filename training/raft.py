"""Retrieval-aware training data (RAFT): question/answer pairs → chat examples with retrieved sources.

For each question the current index is searched as serving searches it. Hits from the question's gold
sources are the gold chunks (a gold source that the top `k` missed is fetched from the snapshot's store:
its chunk that contains the answer, else its first); every other hit is a distractor. With probability
`p_gold` the prompt holds the gold chunks and `n_distractors` distractors; otherwise it holds distractors
only, as many as the gold case would have sources, so the number of sources says nothing about the answer.
Sources are shuffled (seeded), so their position says nothing either.

Without gold the answer is, by default, still the gold answer: RAFT's "memorise" case, which is what lorag
wants from an adapter that holds static knowledge while serving retrieves one or two chunks that may miss.
For knowledge that changes (where an adapter must not answer from memory) `abstain_answer` replaces it with
"I don't know from these sources" instead.

Sources enter the prompt through `core.prompting.with_retrieved_context`, so training sees exactly the
format serving produces. `raft_example` is pure; `build_raft_file` does the reading, searching and writing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from core.prompting import Message, with_retrieved_context
from core.types import Chunk, Hit

ABSTAIN_ANSWER = "I don't know from these sources."
Search = Callable[[str, int], Sequence[Hit]]
"""A query and `k` → hits best first (`Retriever.search` with the serving route's mode)."""


@dataclass(frozen=True)
class RaftItem:
    """One question with its answer and the source ids that hold it."""

    question: str
    answer: str
    gold_sources: tuple[str, ...]


class RaftExample(NamedTuple):
    """A training conversation and whether its prompt holds the gold chunks."""

    messages: list[Message]
    with_gold: bool


@dataclass(frozen=True)
class RaftStats:
    """What `build_raft_file` wrote."""

    items: int
    written: int
    with_gold: int
    without_gold: int
    gold_from_store: int
    """Items whose gold source was not in the top `k` and was fetched from the store (a retrieval miss)."""
    skipped_no_gold: int
    """Items whose gold sources are not in the index at all: the data and the index do not match."""


def is_gold(source_id: str, gold_sources: Iterable[str]) -> bool:
    """Whether a chunk's source is one of the gold ones; bare ids match JSONL records (`file.jsonl#id`)."""
    return any(source_id == gold or source_id.endswith("#" + gold) for gold in gold_sources)


def split_hits(hits: Sequence[Hit], gold_sources: Sequence[str]) -> tuple[list[Hit], list[Hit]]:
    """(gold hits, distractor hits), each in the order retrieved."""
    gold = [hit for hit in hits if is_gold(hit.chunk.source_id, gold_sources)]
    return gold, [hit for hit in hits if not is_gold(hit.chunk.source_id, gold_sources)]


def raft_example(
    question: str,
    answer: str,
    gold_hits: Sequence[Hit],
    distractor_hits: Sequence[Hit],
    rng: random.Random,
    *,
    p_gold: float = 0.8,
    n_distractors: int = 3,
    abstain_answer: str | None = None,
    header: str | None = None,
) -> RaftExample:
    """One RAFT conversation: the gold hits and `n_distractors` distractors with probability `p_gold`,
    else distractors only (then answered with `abstain_answer` if given); sources shuffled by `rng`."""
    with_gold = bool(gold_hits) and rng.random() < p_gold
    if with_gold:
        sources = [*gold_hits, *distractor_hits[:n_distractors]]
    else:
        sources = list(distractor_hits[: n_distractors + len(gold_hits)])
    rng.shuffle(sources)
    reply = answer if with_gold or abstain_answer is None else abstain_answer
    messages: list[Message] = [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
    return RaftExample(with_retrieved_context(messages, sources, header), with_gold)


class GoldChunks:
    """Gold chunks by source id, from all of a snapshot's chunks (read once, on first use)."""

    def __init__(self, load: Callable[[], Iterable[Chunk]]) -> None:
        self._load = load
        self._by_source: dict[str, list[Chunk]] | None = None

    def find(self, gold: str, answer: str) -> Hit | None:
        """The chunk of source `gold` that contains `answer` (else its first chunk), as a hit scoring 0."""
        if self._by_source is None:
            self._by_source = {}
            for chunk in self._load():
                self._by_source.setdefault(chunk.source_id, []).append(chunk)
        sources = [source for source in self._by_source if is_gold(source, [gold])]
        chunks = sorted(
            (c for s in sources for c in self._by_source[s]), key=lambda c: (c.source_id, c.position)
        )
        if not chunks:
            return None
        holding = [chunk for chunk in chunks if answer.lower() in chunk.text.lower()]
        return Hit((holding or chunks)[0], 0.0)


def gold_and_distractors(
    item: RaftItem, search: Search, k: int, store: GoldChunks
) -> tuple[list[Hit], list[Hit], bool]:
    """The item's gold hits (retrieved, or fetched for gold sources the top `k` missed), its distractors,
    and whether any gold came from the store."""
    gold, distractors = split_hits(search(item.question, k), item.gold_sources)
    found = {
        source for source in item.gold_sources if any(is_gold(h.chunk.source_id, [source]) for h in gold)
    }
    fetched = [store.find(source, item.answer) for source in item.gold_sources if source not in found]
    extra = [hit for hit in fetched if hit is not None]
    return [*gold, *extra], distractors, bool(extra)


def build_raft_file(
    items: Sequence[RaftItem],
    out: Path,
    search: Search,
    store: GoldChunks,
    *,
    k: int = 8,
    n_distractors: int = 3,
    p_gold: float = 0.8,
    seed: int = 0,
    abstain_answer: str | None = None,
) -> RaftStats:
    """Write one RAFT example per item to `out` (OpenAI chat JSONL); deterministic for a seed and index."""
    rng = random.Random(seed)
    counts = {"with_gold": 0, "without_gold": 0, "from_store": 0, "skipped": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as file:
        for item in items:
            gold, distractors, from_store = gold_and_distractors(item, search, k, store)
            if not gold:
                counts["skipped"] += 1
                continue
            example = raft_example(
                item.question,
                item.answer,
                gold,
                distractors,
                rng,
                p_gold=p_gold,
                n_distractors=n_distractors,
                abstain_answer=abstain_answer,
            )
            counts["with_gold" if example.with_gold else "without_gold"] += 1
            counts["from_store"] += from_store
            file.write(json.dumps({"messages": example.messages}, ensure_ascii=False) + "\n")
    written = counts["with_gold"] + counts["without_gold"]
    return RaftStats(
        len(items),
        written,
        counts["with_gold"],
        counts["without_gold"],
        counts["from_store"],
        counts["skipped"],
    )


def read_raft_jsonl(path: Path) -> list[RaftItem]:
    """Items from `{question, answer, gold_sources}` JSONL; every bad line is reported by its number.

    Evaluation datasets (HotpotQA, SQuAD, ...) become items through `eval.datasets.raft_items`: training
    takes its questions as data and never reads evaluation formats itself.
    """
    items, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            item = RaftItem(record["question"], record["answer"], tuple(record["gold_sources"]))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}:{number}: expected {{question, answer, gold_sources}} ({exc!r})")
            continue
        if not all(
            isinstance(x, str) and x.strip() for x in (item.question, item.answer, *item.gold_sources)
        ):
            problems.append(f"{path}:{number}: question, answer and gold_sources must be non-empty strings")
        elif not item.gold_sources:
            problems.append(f"{path}:{number}: gold_sources is empty")
        else:
            items.append(item)
    if problems:
        raise ValueError(f"{len(problems)} problem(s):\n" + "\n".join(problems))
    return items
