"""RAFT data: gold among distractors (or not) in the serving prompt format, from a fake and a real index."""

from __future__ import annotations

import json
import random

import pytest

from core.prompting import CONTEXT_HEADER, with_retrieved_context
from core.settings import ChunkingSettings
from core.types import Chunk, Hit
from retrieval.search import open_retriever
from retrieval.snapshots import build_snapshot
from retrieval.sources import load_documents
from tests.retrieval.fakes import HashingEmbedder
from tests.training.conftest import write_jsonl
from training.raft import (
    ABSTAIN_ANSWER,
    GoldChunks,
    RaftItem,
    build_raft_file,
    raft_example,
    read_raft_jsonl,
    split_hits,
)

PASSAGES = {
    "tent": "The Driftglass tent costs 249 dollars.",
    "jacket": "The Hollowpeak jacket costs 189 dollars.",
    "returns": "Items can be returned within 30 days.",
    "hours": "Stores open at nine in the morning.",
    "mascot": "The mascot is a red fox called Ember.",
}
ITEM = RaftItem("How much is the Driftglass tent?", "249 dollars", ("tent",))


def hit(passage_id: str, score: float = 0.5) -> Hit:
    source = f"passages.jsonl#{passage_id}"
    return Hit(Chunk(f"c-{passage_id}", source, PASSAGES[passage_id], title=passage_id), score)


def fake_search(ids: list[str]):
    """A searcher that returns the same hits, best first, whatever the query."""
    hits = [hit(passage_id, 0.9 - 0.1 * rank) for rank, passage_id in enumerate(ids)]
    return lambda query, k: hits[:k]


def no_store() -> GoldChunks:
    return GoldChunks(lambda: [])


def sources_in(messages) -> list[str]:
    """The source labels in the prompt's context message, in order."""
    [context] = [m for m in messages if m["role"] == "system"]
    return [line.split()[1] for line in context["content"].splitlines() if line.startswith("[")]


def build(tmp_path, search, store=None, items=(ITEM,), **options):
    out = tmp_path / "raft.jsonl"
    stats = build_raft_file(list(items), out, search, store or no_store(), **options)
    rows = [json.loads(line)["messages"] for line in out.read_text().splitlines()]
    return stats, rows


def test_bare_gold_ids_match_jsonl_sources_and_distractors_never_include_gold():
    hits = [hit("jacket"), hit("tent"), hit("hours"), hit("returns")]
    gold, distractors = split_hits(hits, ["tent"])
    assert [h.chunk.source_id for h in gold] == ["passages.jsonl#tent"]
    assert [h.chunk.source_id for h in distractors] == [
        f"passages.jsonl#{p}" for p in ("jacket", "hours", "returns")
    ]
    assert split_hits(hits, ["passages.jsonl#tent"])[0] == gold


def test_p_gold_one_always_holds_the_gold_chunk_among_n_distractors(tmp_path):
    items = [ITEM] * 20
    stats, rows = build(
        tmp_path,
        fake_search(["jacket", "tent", "hours", "returns", "mascot"]),
        items=items,
        p_gold=1.0,
        n_distractors=2,
    )
    assert (stats.written, stats.with_gold, stats.without_gold) == (20, 20, 0)
    for messages in rows:
        sources = sources_in(messages)
        assert "passages.jsonl#tent" in sources and len(sources) == 3
        # The best-ranked distractors are the ones used: retrieval's hard negatives.
        assert set(sources) == {"passages.jsonl#tent", "passages.jsonl#jacket", "passages.jsonl#hours"}
        assert messages[-1] == {"role": "assistant", "content": "249 dollars"}
    # Shuffled: the gold chunk is not always in the same place.
    assert len({sources_in(messages).index("passages.jsonl#tent") for messages in rows}) > 1


def test_p_gold_zero_holds_distractors_only_as_many_sources_as_with_gold(tmp_path):
    stats, rows = build(
        tmp_path,
        fake_search(["tent", "jacket", "hours", "returns"]),
        items=[ITEM] * 5,
        p_gold=0.0,
        n_distractors=2,
    )
    assert (stats.with_gold, stats.without_gold) == (0, 5)
    for messages in rows:
        assert sorted(sources_in(messages)) == [f"passages.jsonl#{p}" for p in ("hours", "jacket", "returns")]
        assert PASSAGES["tent"] not in json.dumps(messages)
        assert messages[-1]["content"] == "249 dollars"  # RAFT's "memorise" case by default


def test_abstain_answers_no_gold_examples_with_i_dont_know():
    rng = random.Random(0)
    gold, distractors = [hit("tent")], [hit("jacket")]
    without = raft_example(
        ITEM.question, ITEM.answer, gold, distractors, rng, p_gold=0.0, abstain_answer=ABSTAIN_ANSWER
    )
    with_gold = raft_example(
        ITEM.question, ITEM.answer, gold, distractors, rng, p_gold=1.0, abstain_answer=ABSTAIN_ANSWER
    )
    assert (without.with_gold, without.messages[-1]["content"]) == (False, ABSTAIN_ANSWER)
    assert (with_gold.with_gold, with_gold.messages[-1]["content"]) == (True, ITEM.answer)


def test_the_prompt_is_exactly_what_serving_builds():
    example = raft_example(ITEM.question, ITEM.answer, [hit("tent")], [], random.Random(0), p_gold=1.0)
    turns = [{"role": "user", "content": ITEM.question}, {"role": "assistant", "content": ITEM.answer}]
    assert example.messages == with_retrieved_context(turns, [hit("tent")])
    assert example.messages[0]["content"].startswith(CONTEXT_HEADER)
    assert (
        "[1] passages.jsonl#tent — tent\nThe Driftglass tent costs 249 dollars."
        in example.messages[0]["content"]
    )


def test_the_same_seed_writes_the_same_file(tmp_path):
    items = [ITEM, RaftItem("Who is the mascot?", "Ember", ("mascot",))] * 10
    search = fake_search(list(PASSAGES))
    _, first = build(tmp_path / "a", search, items=items, seed=7)
    _, again = build(tmp_path / "b", search, items=items, seed=7)
    _, other = build(tmp_path / "c", search, items=items, seed=8)
    assert first == again and first != other


def test_gold_missed_by_retrieval_comes_from_the_store(tmp_path):
    chunks = [
        Chunk("t0", "passages.jsonl#tent", "Tents are waterproof.", position=0),
        Chunk("t1", "passages.jsonl#tent", PASSAGES["tent"], position=1),
        Chunk("j0", "passages.jsonl#jacket", PASSAGES["jacket"]),
    ]
    store = GoldChunks(lambda: chunks)
    stats, [messages] = build(tmp_path, fake_search(["jacket", "hours"]), store, p_gold=1.0)
    assert stats.gold_from_store == 1
    assert PASSAGES["tent"] in messages[0]["content"]  # the chunk that holds the answer, not the first
    assert "Tents are waterproof" not in messages[0]["content"]


def test_questions_whose_gold_is_not_indexed_are_skipped_and_counted(tmp_path):
    stats, rows = build(
        tmp_path, fake_search(["jacket"]), items=[ITEM, RaftItem("q", "a", ("nowhere",))], p_gold=1.0
    )
    assert (stats.items, stats.written, stats.skipped_no_gold) == (2, 0, 2)
    assert rows == []


def test_items_come_from_raft_jsonl(tmp_path):
    raft = write_jsonl(tmp_path / "qa.jsonl", [{"question": "q", "answer": "a", "gold_sources": ["tent"]}])
    assert read_raft_jsonl(raft) == [RaftItem("q", "a", ("tent",))]
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"question": "q", "answer": "a", "gold_sources": []},
            {"question": "q", "answer": "", "gold_sources": ["x"]},
        ],
    )
    with pytest.raises(ValueError, match=r"bad.jsonl:1: gold_sources is empty") as error:
        read_raft_jsonl(bad)
    assert "bad.jsonl:2: question, answer and gold_sources must be non-empty" in str(error.value)


def test_a_real_index_gives_gold_and_distractors(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_jsonl(corpus / "passages.jsonl", [{"id": k, "title": k, "text": v} for k, v in PASSAGES.items()])
    embedder = HashingEmbedder()
    build_snapshot(load_documents(corpus), embedder, ChunkingSettings(), tmp_path / "index", progress=False)
    retriever = open_retriever(tmp_path / "index", embedder)
    items = [ITEM, RaftItem("Who is the mascot, the red fox?", "Ember", ("mascot",))]
    stats, rows = build(
        tmp_path,
        retriever.search,
        GoldChunks(retriever.snapshot.store.chunks),
        items=items,
        k=4,
        n_distractors=2,
        p_gold=1.0,
    )
    retriever.close()
    assert (stats.written, stats.with_gold, stats.gold_from_store) == (2, 2, 0)
    assert "passages.jsonl#tent" in sources_in(rows[0]) and "passages.jsonl#mascot" in sources_in(rows[1])
    assert all(len(sources_in(messages)) == 3 for messages in rows)
