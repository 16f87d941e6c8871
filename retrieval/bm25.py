"""The lexical index: BM25 (Lucene variant, k1=1.5, b=0.75) over chunk texts with bm25s, by chunk int id.

Dense search misses exact tokens a user types (product codes, names, version numbers); BM25 finds them.
Text is lower-cased, split into words of two or more letters or digits, and English stopwords are dropped.
There is no stemming: bm25s needs PyStemmer for that, an extra compiled dependency, and the tokenizer
settings are saved with the index so that a later change can be told apart from old snapshots.

    bm25/
        ids.npy  lorag_bm25.json  (the chunk int ids in row order; tokenizer settings and count)
        data.csc.index.npy  indices.csc.index.npy  indptr.csc.index.npy  vocab.index.json  params.index.json
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import bm25s

IDS_FILE = "ids.npy"
META_FILE = "lorag_bm25.json"
FORMAT_VERSION = 1
TOKENIZER: dict[str, Any] = {"lower": True, "stopwords": "en", "stemmer": None}
"""Recorded in `lorag_bm25.json`; `load` refuses an index whose tokenizer this code cannot reproduce."""


class BM25Index:
    """BM25 over chunk texts; `search` returns chunk int ids with raw BM25 scores. Read-only once built,
    so one instance can be shared by threads."""

    def __init__(self, ids: np.ndarray, retriever: bm25s.BM25 | None) -> None:
        """Use `build` or `load`. `retriever` is None for an index of no texts."""
        self._ids = np.asarray(ids, dtype=np.int64)
        self._retriever = retriever
        # Per term, the highest score it gives any chunk: the bound `normalised` divides by.
        self._term_max = _term_maxima(retriever) if retriever is not None else np.zeros(0, np.float32)

    @classmethod
    def build(cls, int_ids: Sequence[int], texts: Sequence[str]) -> BM25Index:
        """Index `texts[i]` under `int_ids[i]`."""
        if len(int_ids) != len(texts):
            raise ValueError(f"{len(int_ids)} ids for {len(texts)} texts")
        ids = np.asarray(int_ids, dtype=np.int64).reshape(-1)
        if len(set(ids.tolist())) != len(ids):
            raise ValueError("chunk ids must be unique")
        if not len(ids):
            return cls(ids, None)
        bm25s = _bm25s()
        tokens = bm25s.tokenize(list(texts), stopwords=TOKENIZER["stopwords"], show_progress=False)
        if not tokens.vocab:  # only stopwords and punctuation: no query can match, and bm25s refuses it
            return cls(ids, None)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(ids, retriever)

    def __len__(self) -> int:
        return len(self._ids)

    def save(self, directory: Path) -> None:
        """Write the index into `directory` (created if needed; files already there are overwritten)."""
        directory.mkdir(parents=True, exist_ok=True)
        if self._retriever is not None:
            self._retriever.save(directory, show_progress=False)
        np.save(directory / IDS_FILE, self._ids, allow_pickle=False)
        meta = {
            "format": FORMAT_VERSION,
            "count": len(self._ids),
            "terms": len(self._term_max),
            "tokenizer": TOKENIZER,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        """Read an index written by `save`."""
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"BM25 index {directory} is incomplete: no {META_FILE}")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT_VERSION or meta.get("tokenizer") != TOKENIZER:
            raise ValueError(f"{meta_path}: unsupported BM25 index format or tokenizer: {meta}")
        ids = np.load(directory / IDS_FILE, allow_pickle=False)
        if len(ids) != meta["count"]:
            raise ValueError(f"{directory}: {len(ids)} ids, but {META_FILE} says {meta['count']}")
        if not meta["terms"]:
            return cls(ids, None)
        retriever = _bm25s().BM25.load(directory, show_progress=False)
        if retriever.scores["num_docs"] != len(ids):
            raise ValueError(f"{directory}: {retriever.scores['num_docs']} documents for {len(ids)} ids")
        return cls(ids, retriever)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Up to `k` chunk ids with their raw BM25 scores, best first; chunks sharing no term are left out.

        Ties keep index order, so results are deterministic.
        """
        term_ids = self._term_ids(query)
        if k <= 0 or not term_ids:
            return []
        scores = self._retriever.get_scores_from_ids(term_ids)  # type: ignore[union-attr]
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        order = np.lexsort((matched, -scores[matched]))
        return [(int(self._ids[i]), float(scores[i])) for i in matched[order]]

    def normalised(self, query: str, results: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
        """`results` (from `search(query, ...)`) with scores divided by the query's attainable maximum.

        The maximum is the sum, over the query's terms, of the highest score each term gives any chunk
        in this index: 1.0 means a chunk matches every query term as strongly as the best chunk for that
        term. Unlike min-max scaling, it does not depend on the other results, so a threshold on it means
        the same for every query (what an `auto` retrieval policy needs).
        """
        bound = float(self._term_max[self._term_ids(query)].sum()) if results else 0.0
        return [(int_id, score / bound if bound > 0 else 0.0) for int_id, score in results]

    def _term_ids(self, query: str) -> list[int]:
        """The query's tokens as index term ids, leaving out terms the index has never seen."""
        if self._retriever is None:
            return []
        [tokens] = _bm25s().tokenize(
            query, stopwords=TOKENIZER["stopwords"], return_ids=False, show_progress=False
        )
        return [t for t in self._retriever.get_tokens_ids(tokens) if t < len(self._term_max)]


def _term_maxima(retriever: bm25s.BM25) -> np.ndarray:
    """Per term id, its highest score in any document (the score matrix is CSC with one column per term)."""
    data, indptr = retriever.scores["data"], retriever.scores["indptr"]
    maxima = np.zeros(len(indptr) - 1, dtype=np.float32)
    nonempty = np.flatnonzero(np.diff(indptr) > 0)
    if len(nonempty):
        maxima[nonempty] = np.maximum.reduceat(data, indptr[nonempty])
    return maxima


def _bm25s() -> Any:
    """bm25s, imported on first use: importing it also imports numba, which takes a while."""
    try:
        import bm25s
    except ImportError as exc:  # pragma: no cover - a dependency of lorag
        raise ImportError("the BM25 index needs bm25s: pip install bm25s") from exc
    # bm25s sets its own logger to DEBUG, which would print through any handler an application installs.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s
