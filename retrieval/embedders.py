"""Text embedders: the `Embedder` protocol and the sentence-transformers implementation.

Every embedder returns float32 rows of unit length, so that the inner product the index computes is the
cosine similarity.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from core.models import resolve_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """Identifies the model in snapshot manifests: a snapshot is only searched with the same embedder."""
        ...

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A `(len(texts), dimension)` float32 array of unit-length rows."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use (or by `warm_up()`) on CUDA if present, else CPU."""

    def __init__(self, model: str, *, name: str | None = None, batch_size: int = 32) -> None:
        """Cheap: nothing is loaded until `warm_up()`, `dimension` or `embed` needs the model.

        `model` is what sentence-transformers loads (a directory or a hub id); `name` is what manifests
        record and defaults to `model`. Give a stable name when `model` is a machine-specific path.
        """
        self.model = model
        self._name = name or model
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        # One lock for loading and encoding: HF fast tokenizers fail ("Already borrowed") when one
        # instance is used from several threads at once, and a model must not be loaded twice.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        model = self.warm_up()
        # Newer sentence-transformers renamed the method; the 3.x that lorag allows only has the old name.
        get_dimension = getattr(model, "get_embedding_dimension", None)
        dimension = get_dimension() if get_dimension else model.get_sentence_embedding_dimension()
        if dimension is None:
            raise ValueError(f"embedder {self.name!r} does not report a fixed embedding dimension")
        return int(dimension)

    def warm_up(self) -> SentenceTransformer:
        """Load the model (once; later calls return it)."""
        with self._lock:
            if self._model is None:
                self._model = _load(self.model)
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the embedder's tokenizer makes of `texts` (usage of `/v1/embeddings`)."""
        model = self.warm_up()
        with self._lock:
            return sum(len(ids) for ids in model.tokenizer(list(texts))["input_ids"])


def load_embedder(ref: str, cache_dir: Path, *, batch_size: int = 32) -> SentenceTransformerEmbedder:
    """The embedder `ref` names (`Settings.embedder`), resolved like every other model; still unloaded.

    The manifest records `ref` itself rather than the resolved cache path, which differs between machines.
    Raises `core.models.ModelNotPulledError` when a packaged model is not pulled yet.
    """
    return SentenceTransformerEmbedder(resolve_model(ref, cache_dir), name=ref, batch_size=batch_size)


def _load(model: str) -> SentenceTransformer:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - both are dependencies of lorag
        raise ImportError(
            "the embedder needs sentence-transformers: pip install sentence-transformers"
        ) from exc
    return SentenceTransformer(model, device="cuda" if torch.cuda.is_available() else "cpu")
