"""The retrieval benchmark's code path, on tiny synthetic data with the fake embedder."""

from __future__ import annotations

from bench.retrieval import run_retrieval_bench
from tests.retrieval.fakes import HashingEmbedder


def test_quick_bench_prints_one_table() -> None:
    embedder = HashingEmbedder()
    printed: list[str] = []
    rows = run_retrieval_bench(None, out=printed.append, quick=True, embedder=embedder)
    [table] = printed
    measurements = [row["measurement"] for row in rows]
    for expected in (
        "recall@10 hybrid",
        "MRR@10 dense",
        "build / direct throughput",
        "refresh 1% / full rebuild",
        "flat search p50",
        "hnsw recall@10 vs flat",
        "query embedding p50",
    ):
        assert expected in measurements
        assert expected in table
    assert all(row["raw"] is not None for row in rows)
    # The synthetic questions name their product's code word: every mode finds it.
    assert next(r for r in rows if r["measurement"] == "recall@10 bm25")["raw"] == 1.0
