"""Embedder backends side by side in one run: chunks/s on PubMedQA dev, recall@10 on HotpotQA dev.

1. Throughput: PubMedQA dev abstracts (`pqal_dev.json`, passages as `lorag eval` indexes them) cut by the
   default chunker, embedded by every embedder. The machine may be shared, so the embedders take turns on
   slices of the same chunks (the order rotating each slice): each sees the same background load, and the
   ratio to the first (torch) is what to read, not the absolute rate. Also each one's cosine to the first
   embedder's vectors, and one-query latency (what a gateway pays per request).
2. Quality: recall@10 of dense search on HotpotQA dev, built and searched as `lorag bench retrieval`'s
   quality step does (`bench/retrieval.py`), with each embedder.

`quick=True` runs both steps on tiny synthetic data, so that a unit test covers this code with fakes.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.retrieval import (
    ONE_CHUNK_PER_DOCUMENT,
    Corpus,
    Row,
    _hotpot_corpus,
    _row,
    _synthetic_corpus,
    format_table,
)
from core.embedder_spec import AUTO_CPU_BACKEND
from core.settings import DEFAULT_EMBEDDER, ChunkingSettings, Settings
from eval.metrics import recall_at_k
from retrieval.chunking import chunk_document, embedding_text
from retrieval.embedders import Embedder, load_embedder
from retrieval.search import open_retriever
from retrieval.snapshots import build_snapshot
from retrieval.sources import Document

DEFAULT_REFS = (f"{DEFAULT_EMBEDDER}@torch", f"{DEFAULT_EMBEDDER}@{AUTO_CPU_BACKEND}")
SLICE = 64
"""Chunks each embedder embeds in its turn: long enough to amortise a call, short enough to interleave."""
TARGET_RATIO = 2.0
TARGET_RECALL_DROP = 0.01


def run_embed_bench(
    shared_data: Path | None,
    refs: Sequence[str] = DEFAULT_REFS,
    out: Callable[[str], object] = print,
    quick: bool = False,
    *,
    embedders: Sequence[Embedder] | None = None,
    batch_size: int = 32,
    cache_dir: Path | None = None,
) -> list[Row]:
    """Compare the embedders `refs` name (the first is the baseline), print one table with `out`, return
    its rows. `shared_data` holds `pubmedqa/` and `hotpotqa/` (`../shared/data`); `embedders` replaces
    `refs` (tests pass fakes). `batch_size` is each embedder's encode batch."""
    if not (refs or embedders):
        raise ValueError("embed bench: name at least one embedder (the first is the baseline)")
    if embedders is None:
        directory = cache_dir or Settings().cache_dir
        embedders = [load_embedder(ref, directory, batch_size=batch_size) for ref in refs]
    texts = _synthetic_texts() if quick else _pubmed_chunks(shared_data)
    corpus = None if quick else _hotpot(shared_data)
    rows = _throughput(texts, embedders, batch_size)
    rows += _latency(embedders, 10 if quick else 50)
    rows += _recall(corpus or _synthetic_corpus(quick=True), embedders, real=corpus is not None)
    out(format_table(rows))
    return rows


def _pubmed_chunks(shared_data: Path | None) -> list[str]:
    """PubMedQA dev passages (`eval.datasets.pubmedqa_dataset`) in lorag's default chunks."""
    from eval.datasets import pubmedqa_dataset

    path = None if shared_data is None else shared_data / "pubmedqa" / "pqal_dev.json"
    if path is None or not path.is_file():
        raise FileNotFoundError(f"PubMedQA dev is not at {path}: pass the folder holding pubmedqa/")
    passages = pubmedqa_dataset(json.loads(path.read_text())).documents
    chunking = ChunkingSettings()
    documents = [Document.from_text(p.id, f"# {p.title}\n\n{p.text}") for p in passages]
    return [embedding_text(c) for doc in documents for c in chunk_document(doc, chunking)]


def _hotpot(shared_data: Path | None) -> Corpus | None:
    root = None if shared_data is None else shared_data / "hotpotqa"
    return _hotpot_corpus(root) if root is not None and (root / "dev.jsonl").is_file() else None


def _synthetic_texts() -> list[str]:
    rng = random.Random(2)
    words = ["cell", "trial", "dose", "risk", "patients", "outcome", "cohort", "therapy", "score"]
    return [" ".join(rng.choices(words, k=rng.randint(5, 60))) for _ in range(150)]


def _throughput(texts: list[str], embedders: Sequence[Embedder], batch_size: int) -> list[Row]:
    for embedder in embedders:
        embedder.embed(texts[:8])  # load and warm up outside the clock
    seconds = [0.0] * len(embedders)
    vectors: list[list[np.ndarray]] = [[] for _ in embedders]
    for turn, start in enumerate(range(0, len(texts), SLICE)):
        batch = texts[start : start + SLICE]
        for step in range(len(embedders)):
            i = (turn + step) % len(embedders)
            began = time.perf_counter()
            vectors[i].append(embedders[i].embed(batch))
            seconds[i] += time.perf_counter() - began
    base = np.concatenate(vectors[0])
    words = sum(len(t.split()) for t in texts) / max(len(texts), 1)
    rows = []
    for i, embedder in enumerate(embedders):
        cosine = np.sum(np.concatenate(vectors[i]) * base, axis=1)
        ratio = seconds[0] / seconds[i]
        target = f">= {TARGET_RATIO:.0f}x" if i else ""
        notes = f"{len(texts)} chunks of {words:.0f} words, batch {batch_size}" if i == 0 else ""
        rows.append(_row(f"embed, {embedder.name}", len(texts) / seconds[i], "{:.1f} chunks/s", notes=notes))
        if i:
            rows.append(_row(f"speed-up, {embedder.name}", ratio, "{:.2f}x", target, ratio >= TARGET_RATIO))
            notes = f"min {cosine.min():.4f}"
            rows.append(
                _row(f"cosine to {embedders[0].name}, {embedder.name}", cosine.mean(), "{:.5f}", notes=notes)
            )
    return rows


def _latency(embedders: Sequence[Embedder], count: int) -> list[Row]:
    questions = [
        f"Does treatment number {i} lower the risk of stroke in adults over {40 + i}?" for i in range(count)
    ]
    rows = []
    for embedder in embedders:
        times = []
        for question in questions:
            began = time.perf_counter()
            embedder.embed([question])
            times.append(time.perf_counter() - began)
        p50 = float(np.percentile(times, 50)) * 1000
        rows.append(_row(f"query embedding p50, {embedder.name}", p50, "{:.1f} ms", notes="one query"))
    return rows


def _recall(corpus: Corpus, embedders: Sequence[Embedder], *, real: bool) -> list[Row]:
    documents, questions = corpus
    gold = [sources for _, sources in questions]
    where = (
        f"{'HotpotQA dev' if real else 'synthetic'}: {len(questions)} questions, {len(documents)} paragraphs"
    )
    rows = []
    baseline = None
    for embedder in embedders:
        with tempfile.TemporaryDirectory(prefix="lorag-embed-bench-") as scratch:
            build_snapshot(documents, embedder, ONE_CHUNK_PER_DOCUMENT, Path(scratch), progress=False)
            retriever = open_retriever(Path(scratch), embedder)
            found = [[h.chunk.source_id for h in retriever.search(q, 10, mode="dense")] for q, _ in questions]
            retriever.close()
        recall = recall_at_k(found, gold, 10)["score"]
        if baseline is None:
            baseline = recall
            rows.append(_row(f"recall@10 dense, {embedder.name}", recall, notes=where))
            continue
        met = recall >= baseline - TARGET_RECALL_DROP
        target = f">= {embedders[0].name} - {TARGET_RECALL_DROP}"
        rows.append(_row(f"recall@10 dense, {embedder.name}", recall, target=target, met=met))
    return rows
