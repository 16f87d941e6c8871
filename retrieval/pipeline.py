"""Documents → chunks → vectors: the one chunk-and-embed step that a full build and a refresh share.

A full build embeds every chunk; a refresh hands over the vectors it can reuse (by chunk int id) and only
the rest are embedded. Either way the result is one row per chunk, in chunk order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from core.settings import ChunkingSettings
from core.types import Chunk
from retrieval.chunking import chunk_document, chunk_int_id, embedding_text
from retrieval.embedders import Embedder
from retrieval.errors import EmbedderMismatchError
from retrieval.sources import Document

EMBED_BATCH = 1024  # large batches let sentence-transformers sort by length: ~0.95x of direct encode
Phase = Callable[[str], None]
"""Told where a writer is (`embedding`, `write`, `switch`, `switched`); the crash-safety tests pass one
that kills the process at a chosen phase."""


def no_phase(phase: str) -> None:
    """The default `on_phase`: nothing to report to."""


def chunk_documents(documents: Sequence[Document], chunking: ChunkingSettings) -> list[Chunk]:
    """Every document's chunks, documents in order."""
    return [chunk for doc in documents for chunk in chunk_document(doc, chunking)]


def embed_chunks(
    chunks: Sequence[Chunk], embedder: Embedder, progress: bool, on_phase: Phase = no_phase
) -> np.ndarray:
    """All chunk vectors, in batches so that the progress bar moves."""
    parts = [np.zeros((0, embedder.dimension), dtype=np.float32)]
    with tqdm(total=len(chunks), desc="embedding", unit="chunk", disable=not progress) as bar:
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = chunks[start : start + EMBED_BATCH]
            parts.append(np.asarray(embedder.embed([embedding_text(c) for c in batch]), dtype=np.float32))
            bar.update(len(batch))
            on_phase("embedding")
    return np.concatenate(parts)


def chunk_vectors(
    chunks: Sequence[Chunk],
    embedder: Embedder,
    dimension: int,
    *,
    reusable: Mapping[int, np.ndarray] | None = None,
    progress: bool = True,
    on_phase: Phase = no_phase,
) -> np.ndarray:
    """One row per chunk: the `reusable` vector (by chunk int id) where there is one, else embedded now.

    Raises `EmbedderMismatchError` when the embedder's vectors no longer have `dimension` (the reused
    ones' length).
    """
    reusable = reusable or {}
    ids = [chunk_int_id(c.chunk_id) for c in chunks]
    vectors = np.empty((len(chunks), dimension), dtype=np.float32)
    for row, int_id in enumerate(ids):
        if int_id in reusable:
            vectors[row] = reusable[int_id]
    missing = [row for row, int_id in enumerate(ids) if int_id not in reusable]
    if missing:
        fresh = embed_chunks([chunks[row] for row in missing], embedder, progress, on_phase)
        if fresh.shape[1] != dimension:
            raise EmbedderMismatchError(
                f"embedder {embedder.name!r} now makes vectors of dimension {fresh.shape[1]}, the current "
                f"snapshot's have {dimension}: rebuild the index with `lorag index build`"
            )
        vectors[missing] = fresh
    return vectors
