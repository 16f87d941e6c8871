"""The BM25 index: build, search, save and load, and the normalised scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.bm25 import BM25Index

BIG_ID = 2**60 - 1
TEXTS = {
    BIG_ID: "The Driftglass tent costs 249 dollars.",
    7: "The Hollowpeak jacket costs 189 dollars.",
    42: "Refunds reach the original card within five working days.",
    9: "Tent pegs, tent poles and a tent bag: the tent repair kit.",
}


@pytest.fixture
def index() -> BM25Index:
    return BM25Index.build(list(TEXTS), list(TEXTS.values()))


def test_finds_exact_terms_best_first(index: BM25Index) -> None:
    results = index.search("driftglass tent", 10)
    assert [i for i, _ in results] == [BIG_ID, 9]  # the rare term outweighs many mentions of a common one
    assert results[0][1] > results[1][1] > 0


def test_case_stopwords_and_unknown_terms(index: BM25Index) -> None:
    assert index.search("HOLLOWPEAK", 1)[0][0] == 7
    assert index.search("the and of", 5) == []  # only stopwords
    assert index.search("zeppelin", 5) == []  # no chunk shares a term: zero scores are dropped
    assert index.search("", 5) == []


def test_k_bounds(index: BM25Index) -> None:
    assert len(index.search("dollars", 1)) == 1
    assert len(index.search("dollars tent refunds", 100)) == 4
    assert index.search("tent", 0) == []


def test_save_and_load_round_trip(tmp_path: Path, index: BM25Index) -> None:
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert len(loaded) == 4
    for query in ["driftglass tent", "refunds card", "costs dollars"]:
        assert loaded.search(query, 4) == index.search(query, 4)


def test_empty_and_termless_indexes(tmp_path: Path) -> None:
    for name, ids, texts in [("empty", [], []), ("stopwords", [1, 2], ["the", "?!"])]:
        BM25Index.build(ids, texts).save(tmp_path / name)
        loaded = BM25Index.load(tmp_path / name)
        assert (len(loaded), loaded.search("the tent", 3)) == (len(ids), [])


def test_build_checks_its_input() -> None:
    with pytest.raises(ValueError, match="2 ids for 1 texts"):
        BM25Index.build([1, 2], ["a"])
    with pytest.raises(ValueError, match="unique"):
        BM25Index.build([1, 1], ["tent", "jacket"])


def test_load_refuses_a_missing_or_foreign_index(tmp_path: Path, index: BM25Index) -> None:
    with pytest.raises(FileNotFoundError):
        BM25Index.load(tmp_path / "nothing")
    index.save(tmp_path / "bm25")
    meta = tmp_path / "bm25" / "lorag_bm25.json"
    meta.write_text(meta.read_text().replace('"stemmer": null', '"stemmer": "snowball"'))
    with pytest.raises(ValueError, match="tokenizer"):
        BM25Index.load(tmp_path / "bm25")


def test_normalised_scores_divide_by_the_query_maximum(index: BM25Index) -> None:
    results = index.search("tent", 4)
    normalised = index.normalised("tent", results)
    # One query term: the best chunk for it reaches the bound exactly.
    assert normalised[0] == (results[0][0], pytest.approx(1.0))
    assert 0 < normalised[1][1] < 1
    assert [s for _, s in normalised] == pytest.approx([s / results[0][1] for _, s in results])
    # Two terms no single chunk has both of: nobody reaches 1.
    both = index.normalised("hollowpeak refunds", index.search("hollowpeak refunds", 4))
    assert all(0 < s < 1 for _, s in both)
    assert index.normalised("zeppelin", []) == []
