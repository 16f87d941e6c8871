"""`lorag bench retrieval`: retrieval quality and speed, printed as one table.

1. Quality on HotpotQA dev (every question's ten paragraphs pooled into one corpus, one chunk each; gold =
   the supporting paragraphs' titles): recall@5, recall@10 and MRR@10 of bm25, dense and hybrid search.
2. Build speed on ~10K real chunks (HotpotQA sentences): the snapshot build path against the embedder's
   own batch encode of the same texts, and an incremental refresh of 1% of the documents against a full
   rebuild.
3. Search latency on 100K synthetic unit vectors, one thread, query embedding excluded (measured apart):
   exact `flat` and approximate `hnsw`, with hnsw's recall@10 against exact search.

`quick=True` runs every step on tiny synthetic data, so that a unit test covers this code in seconds.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from core.settings import DEFAULT_EMBEDDER, ChunkingSettings, Settings
from core.stats import percentile
from eval.metrics import mrr, recall_at_k
from retrieval.chunking import chunk_document, embedding_text
from retrieval.embedders import Embedder, load_embedder
from retrieval.index import DenseIndex
from retrieval.search import MODES, open_retriever
from retrieval.snapshots import build_snapshot
from retrieval.sources import Document

ONE_CHUNK_PER_DOCUMENT = ChunkingSettings(max_tokens=2000, overlap=0)
"""HotpotQA paragraphs are a few hundred words at most: each one stays a single chunk."""


@dataclass(frozen=True)
class Sizes:
    """How much data each step uses."""

    build_chunks: int
    """One-sentence documents (one chunk each) in the build and refresh timing."""
    vectors: int
    """Synthetic vectors in the latency step."""
    latency_queries: int
    """Timed searches per index; a tenth of that many query embeddings."""
    hnsw: dict[str, int]
    """`DenseIndex.create` parameters of the hnsw index (empty: the defaults)."""


FULL = Sizes(build_chunks=10_000, vectors=100_000, latency_queries=1000, hnsw={})
QUICK = Sizes(build_chunks=200, vectors=2000, latency_queries=50, hnsw={"m": 8, "ef_construction": 40})
Row = dict[str, Any]
Corpus = tuple[list[Document], list[tuple[str, list[str]]]]
"""Documents, and (question, gold source ids) pairs."""


def run_retrieval_bench(
    shared_data: Path | None,
    out: Callable[[str], object] = print,
    quick: bool = False,
    *,
    embedder: Embedder | None = None,
) -> list[Row]:
    """Run the benchmark, print its table with `out` and return the rows.

    `shared_data` is the folder holding `hotpotqa/` (`../shared/data`); without it the steps that need
    real text are skipped. `embedder` defaults to the real all-MiniLM-L6-v2 (`quick` runs pass a fake).
    """
    start = time.perf_counter()
    sizes = QUICK if quick else FULL
    hotpot = None if quick or shared_data is None else shared_data / "hotpotqa"
    if hotpot is not None and not (hotpot / "dev.jsonl").is_file():
        hotpot = None
    if embedder is None:
        embedder = load_embedder(DEFAULT_EMBEDDER, Settings().cache_dir)
    with tempfile.TemporaryDirectory(prefix="lorag-bench-") as scratch:
        rows = [
            *_quality(
                _hotpot_corpus(hotpot) if hotpot else _synthetic_corpus(quick), embedder, Path(scratch)
            ),
            *_build(_sentence_documents(hotpot, sizes.build_chunks, quick), embedder, Path(scratch)),
            *_latency(sizes, embedder),
        ]
    rows.append(_row("benchmark wall time", time.perf_counter() - start, "{:.0f} s"))
    out(format_table(rows))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """The rows as one aligned text table."""
    header = ("measurement", "value", "target", "notes")
    cells = [header, *((r["measurement"], r["value"], r["target"], r["notes"]) for r in rows)]
    widths = [max(len(str(row[i])) for row in cells) for i in range(3)]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(row[:3], widths, strict=True)) for row in cells]
    lines = [f"{line} | {row[3]}".rstrip(" |") for line, row in zip(lines, cells, strict=True)]
    lines.insert(1, "-+-".join("-" * w for w in widths) + "-+-" + "-" * 20)
    return "\n".join(lines)


def _row(
    measurement: str,
    raw: float | None,
    fmt: str = "{:.3f}",
    target: str = "",
    met: bool | None = None,
    notes: str = "",
) -> Row:
    value = "skipped" if raw is None else fmt.format(raw)
    mark = "" if met is None else (" (met)" if met else " (MISSED)")
    return {"measurement": measurement, "raw": raw, "value": value, "target": target + mark, "notes": notes}


# --- 1. quality ------------------------------------------------------------------------------------------


def _quality(corpus: Corpus, embedder: Embedder, scratch: Path) -> list[Row]:
    documents, questions = corpus
    build_snapshot(documents, embedder, ONE_CHUNK_PER_DOCUMENT, scratch / "quality", progress=False)
    retriever = open_retriever(scratch / "quality", embedder)
    gold = [sources for _, sources in questions]
    scores: dict[str, dict[str, float]] = {}
    latency: dict[str, list[float]] = {}
    for mode in ("bm25", "dense", "hybrid"):
        found, latency[mode] = [], []
        for question, _ in questions:
            began = time.perf_counter()
            hits = retriever.search(question, 10, mode=mode)  # type: ignore[arg-type]
            latency[mode].append(time.perf_counter() - began)
            found.append([hit.chunk.source_id for hit in hits])
        scores[mode] = {
            "recall@5": recall_at_k(found, gold, 5)["score"],
            "recall@10": recall_at_k(found, gold, 10)["score"],
            "MRR@10": mrr(found, gold, 10)["score"],
        }
    retriever.close()
    return _quality_rows(scores, latency, len(documents), len(questions))


def _quality_rows(
    scores: dict[str, dict[str, float]], latency: dict[str, list[float]], docs: int, questions: int
) -> list[Row]:
    rows = []
    where = f"{questions} questions, {docs} paragraphs"
    for metric in ("recall@5", "recall@10", "MRR@10"):
        best_single = max(scores["bm25"][metric], scores["dense"][metric])
        for mode in ("bm25", "dense", "hybrid"):
            value = scores[mode][metric]
            if mode == "hybrid":
                rows.append(
                    _row(f"{metric} hybrid", value, target=">= best single", met=value >= best_single)
                )
            else:
                rows.append(_row(f"{metric} {mode}", value, notes=where if mode == "bm25" else ""))
    for mode in MODES:
        p50 = percentile(latency[mode], 50) * 1000
        rows.append(_row(f"search p50, {mode}, k=10", p50, "{:.1f} ms", notes="incl. query embedding"))
    return rows


def _hotpot_corpus(root: Path) -> Corpus:
    """HotpotQA dev: every question's paragraphs, deduplicated by title, one document each."""
    documents: dict[str, Document] = {}
    questions = []
    for record in _jsonl(root / "dev.jsonl"):
        context = record["context"]
        for title, sentences in zip(context["title"], context["sentences"], strict=True):
            if title not in documents:
                documents[title] = Document.from_text(title, f"# {title}\n\n{''.join(sentences).strip()}")
        questions.append((record["question"], sorted(set(record["supporting_facts"]["title"]))))
    return list(documents.values()), questions


def _synthetic_corpus(quick: bool) -> Corpus:
    """Documents about made-up products, each named by a code word; questions ask about one product."""
    rng = random.Random(0)
    filler = ["price", "warranty", "colour", "size", "delivery", "stock", "battery", "weight"]
    documents, questions = [], []
    for i in range(30 if quick else 300):
        code = f"zq{i:03d}x"
        words = " ".join(rng.choice(filler) for _ in range(20))
        documents.append(Document.from_text(f"product-{i}", f"# Product {i}\n\nThe {code} has {words}."))
        questions.append((f"what is the {rng.choice(filler)} of the {code}", [f"product-{i}"]))
    return documents, questions


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- 2. build speed ------------------------------------------------------------------------------------


def _build(documents: list[Document], embedder: Embedder, scratch: Path) -> list[Row]:
    chunking = ChunkingSettings()
    texts = [embedding_text(c) for doc in documents for c in chunk_document(doc, chunking)]
    _direct_encode(embedder, texts[:64])  # load the model and warm it up
    began = time.perf_counter()
    _direct_encode(embedder, texts)
    direct = time.perf_counter() - began
    began = time.perf_counter()
    build_snapshot(documents, embedder, chunking, scratch / "build", progress=False)
    full = time.perf_counter() - began
    ratio = direct / full
    rows = [
        _row(
            "embed throughput, direct encode", len(texts) / direct, "{:.0f} chunks/s", notes=_kind(documents)
        ),
        _row("embed throughput, snapshot build", len(texts) / full, "{:.0f} chunks/s", notes=f"{full:.1f} s"),
        _row("build / direct throughput", ratio, "{:.2f}x", ">= 0.90x", ratio >= 0.9),
    ]
    return [*rows, _refresh_row(documents, embedder, chunking, scratch / "build", full)]


def _refresh_row(
    documents: list[Document], embedder: Embedder, chunking: ChunkingSettings, index_dir: Path, full: float
) -> Row:
    """Time an incremental refresh after changing every 100th document, against the full build."""
    try:
        from retrieval.refresh import refresh_index
    except ImportError:
        return _row("refresh 1% / full rebuild", None, notes="retrieval.refresh is not available")
    changed = [
        Document.from_text(d.source_id, d.text + " Revised.", d.modified) if i % 100 == 0 else d
        for i, d in enumerate(documents)
    ]
    began = time.perf_counter()
    try:
        refresh_index(changed, embedder, chunking, index_dir, progress=False)
    except Exception as exc:  # one broken measurement should not lose the table
        return _row("refresh 1% / full rebuild", None, notes=f"failed: {exc!r}")
    seconds = time.perf_counter() - began
    notes = f"{seconds:.2f} s for {len(documents[::100])} of {len(documents)} documents"
    return _row("refresh 1% / full rebuild", seconds / full, "{:.1%}", "<= 5%", seconds / full <= 0.05, notes)


def _direct_encode(embedder: Embedder, texts: list[str]) -> None:
    """The baseline: one `SentenceTransformer.encode` call over every text (the fake's `embed` in tests)."""
    warm_up = getattr(embedder, "warm_up", None)
    if warm_up is None:
        embedder.embed(texts)
        return
    batch_size = getattr(embedder, "batch_size", 32)
    warm_up().encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)


def _sentence_documents(hotpot: Path | None, count: int, quick: bool) -> list[Document]:
    """`count` one-sentence documents: HotpotQA sentences under their paragraph's title, else synthetic."""
    if hotpot is None:
        rng = random.Random(1)
        words = ["river", "town", "album", "band", "film", "season", "school", "company", "war"]
        return [
            Document.from_text(f"s{i}", f"# Topic {i % 17}\n\n" + " ".join(rng.choices(words, k=15)))
            for i in range(count)
        ]
    documents: dict[str, Document] = {}
    for name in ("train.jsonl", "dev.jsonl"):
        for record in _jsonl(hotpot / name):
            for title, sentences in zip(
                record["context"]["title"], record["context"]["sentences"], strict=True
            ):
                for i, sentence in enumerate(s.strip() for s in sentences):
                    if len(sentence.split()) >= 4 and f"{title}#{i}" not in documents:
                        documents[f"{title}#{i}"] = Document.from_text(
                            f"{title}#{i}", f"# {title}\n\n{sentence}"
                        )
    return list(documents.values())[:count]


def _kind(documents: list[Document]) -> str:
    synthetic = documents[0].source_id == "s0"
    return f"{len(documents)} {'synthetic' if synthetic else 'HotpotQA'} sentences, one document each"


# --- 3. latency --------------------------------------------------------------------------------------------


def _latency(sizes: Sizes, embedder: Embedder) -> list[Row]:
    vectors, queries = _clustered_vectors(sizes.vectors, sizes.latency_queries)
    ids = np.arange(len(vectors), dtype=np.int64)
    threads = faiss.omp_get_max_threads()
    flat = DenseIndex.create("flat", vectors.shape[1])
    flat.add(ids, vectors)
    began = time.perf_counter()
    hnsw = DenseIndex.create("hnsw", vectors.shape[1], **sizes.hnsw)
    hnsw.add(ids, vectors)
    hnsw_build = time.perf_counter() - began
    faiss.omp_set_num_threads(1)
    try:
        flat_ms, exact = _timed_searches(flat, queries)
        hnsw_ms, approximate = _timed_searches(hnsw, queries)
    finally:
        faiss.omp_set_num_threads(threads)
    recall = float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approximate, exact, strict=True)]))
    n = f"{len(vectors) // 1000}K x {vectors.shape[1]}-d, 1 thread"
    embed_ms = _embedding_latency(embedder, sizes.latency_queries // 10)
    params = ", ".join(f"{k}={v}" for k, v in hnsw.params.items())
    return [
        _row("flat search p50", flat_ms[0], "{:.2f} ms", "<= 10 ms", flat_ms[0] <= 10, n),
        _row("flat search p99", flat_ms[1], "{:.2f} ms"),
        _row("hnsw search p50", hnsw_ms[0], "{:.3f} ms", "<= 1 ms", hnsw_ms[0] <= 1, params),
        _row("hnsw search p99", hnsw_ms[1], "{:.3f} ms"),
        _row("hnsw recall@10 vs flat", recall, "{:.3f}", ">= 0.95", recall >= 0.95),
        _row("hnsw build", hnsw_build, "{:.1f} s", notes=f"{faiss.omp_get_max_threads()} threads"),
        _row("query embedding p50", embed_ms[0], "{:.1f} ms", notes=f"{embedder.name}, one query"),
        _row("query embedding p99", embed_ms[1], "{:.1f} ms"),
    ]


def _clustered_vectors(n: int, queries: int, dimension: int = 384) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around 1000 random centres, like sentence embeddings, which crowd around topics.

    The noise is twice the centre's scale: cosine ~0.45 to the centre, ~0.2 between neighbours of one topic.
    I.i.d. random vectors would be an unrealistic worst case: with no neighbourhoods to find, HNSW's
    recall@10 on 100K of them stays under 0.71 even at ef_search=512. Queries come from the same mixture.
    """
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((min(1000, n), dimension)).astype(np.float32)
    rows = centres[rng.integers(0, len(centres), n + queries)]
    rows += 2.0 * rng.standard_normal(rows.shape, dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows[:n], rows[n:]


def _timed_searches(index: DenseIndex, queries: np.ndarray) -> tuple[tuple[float, float], list[list[int]]]:
    """(p50, p99) milliseconds of single-query searches for the top 10, and their ids."""
    index.search(queries[0], 10)
    times, found = [], []
    for query in queries:
        began = time.perf_counter()
        hits = index.search(query, 10)
        times.append(time.perf_counter() - began)
        found.append([i for i, _ in hits])
    return _percentiles(times), found


def _embedding_latency(embedder: Embedder, count: int) -> tuple[float, float]:
    questions = [f"Which band released the album number {i} in the year {1960 + i}?" for i in range(count)]
    embedder.embed(questions[:1])
    times = []
    for question in questions:
        began = time.perf_counter()
        embedder.embed([question])
        times.append(time.perf_counter() - began)
    return _percentiles(times)


def _percentiles(seconds: Sequence[float]) -> tuple[float, float]:
    return percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000
