"""RAFT examples for document facts: distractors from the evolving index, the gold chunk from the docs."""

from __future__ import annotations

from core.prompting import CONTEXT_HEADER
from core.types import Chunk, Hit
from training.data import read_examples
from training.docs import RaftSource, build_dataset
from training.docs.outputs import TRAIN_FILE

from .conftest import FakeTeacher, options

INDEX = [
    Chunk(f"n{i}", f"notices/{i}.md", text, i, "Notice")
    for i, text in enumerate(
        ["The boat hall is closed on Mondays.", "Fees went up by 5%.", "The quay is icy."]
    )
]


def search(query: str, k: int) -> list[Hit]:
    """The evolving index: it holds none of the documents, so every hit is a distractor."""
    return [Hit(chunk, 0.5 - 0.1 * rank) for rank, chunk in enumerate(INDEX[:k])]


def test_raft_examples_put_the_fact_among_retrieved_distractors(docs_dir, tmp_path, settings):
    out = tmp_path / "out"
    source = RaftSource(search, k=3, n_distractors=2, p_gold=0.8)
    chosen = options(docs_dir, out, counterfactual_per_fact=0)
    result = build_dataset(chosen, FakeTeacher(), settings, raft=source)
    assert result.raft is not None and result.raft_examples == result.raft.written > 0
    assert result.raft.gold_from_store == result.raft.items  # the documents are not in the index
    examples = read_examples(out / TRAIN_FILE)
    with_sources = [e for e in examples if e.messages[0]["role"] == "system"]
    assert len(with_sources) == result.raft_examples
    for example in with_sources:
        context, question, answer = (m["content"] for m in example.messages)
        assert context.startswith(CONTEXT_HEADER)
        assert any(chunk.text in context for chunk in INDEX)
    gold = [e for e in with_sources if e.messages[2]["content"] in e.messages[0]["content"]]
    assert 0 < len(gold) < len(with_sources)  # most prompts hold the fact's chunk; some only distractors
