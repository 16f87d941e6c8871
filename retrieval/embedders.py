"""Text embedders: the `Embedder` protocol and the sentence-transformers implementation.

Every embedder returns float32 rows of unit length, so that the inner product the index computes is the
cosine similarity. A sentence-transformers model runs on torch, or from a file exported for ONNX Runtime or
OpenVINO (`Settings.embedder`'s `@backend` suffix; `core/embedder_spec.py`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.embedder_export import exported_file
from core.embedder_spec import parse_embedder_ref, resolve_spec
from core.models import ModelNotPulledError, packaged, resolve_model


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
    """A sentence-transformers model, loaded on first use (or by `warm_up()`): on torch (CUDA if present,
    else CPU) by default, or by `loader`, which returns an object with the same `encode` / `tokenizer`."""

    def __init__(
        self,
        model: str,
        *,
        name: str | None = None,
        batch_size: int = 32,
        loader: Callable[[str], Any] | None = None,
    ) -> None:
        """Cheap: nothing is loaded until `warm_up()`, `dimension` or `embed` needs the model.

        `model` is what sentence-transformers loads (a directory or a hub id); `name` is what manifests
        record and defaults to `model`. Give a stable name when `model` is a machine-specific path.
        `loader(model)` loads it (default: `SentenceTransformer` on torch).
        """
        self.model = model
        self._name = name or model
        self.batch_size = batch_size
        self._loader = loader or _load
        self._model: Any = None
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

    def warm_up(self) -> Any:
        """Load the model (once; later calls return it): a `SentenceTransformer` or an `ExportedModel`."""
        with self._lock:
            if self._model is None:
                self._model = self._loader(self.model)
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
    """The embedder `ref` names (`Settings.embedder`, `<model>[@<backend>[-int8]]`), resolved like every
    other model, its backend chosen for this machine when `ref` names none; still unloaded.

    The embedder's name (what manifests record) is the resolved reference, not the cache path, which
    differs between machines. Raises `core.models.ModelNotPulledError` when a packaged model is not pulled
    yet or the backend's exported file is missing (both are made by `lorag models pull`).
    """
    spec = parse_embedder_ref(ref)
    path = resolve_model(spec.model, cache_dir)
    spec = resolve_spec(spec, local=Path(path).is_dir())
    if spec.backend == "torch":
        return SentenceTransformerEmbedder(path, name=spec.name, batch_size=batch_size)
    if not Path(path).is_dir():
        raise ModelNotPulledError(
            f"embedder {ref!r}: the {spec.backend} backend needs a local model directory, not a hub id"
        )
    model_file = exported_file(Path(path), spec.runtime, spec.quantization)
    if not model_file.exists():
        raise ModelNotPulledError(
            f"embedder {spec.name!r} is not exported for {spec.backend} yet: run `lorag models pull`"
        )
    loader = functools.partial(_load_exported, backend=spec.runtime, model_file=model_file)
    return SentenceTransformerEmbedder(path, name=spec.name, batch_size=batch_size, loader=loader)


def embedder_name(ref: str) -> str:
    """The name an embedder loaded from `ref` records (thresholds files key on it), without pulling or
    loading anything."""
    spec = parse_embedder_ref(ref)
    local = packaged(spec.model) is not None or Path(spec.model).expanduser().is_dir()
    return resolve_spec(spec, local=local).name


def _load_exported(model: str, *, backend: str, model_file: Path) -> Any:
    from retrieval.exported import load_exported

    return load_exported(Path(model), backend, model_file)


def _load(model: str) -> Any:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - both are dependencies of lorag
        raise ImportError(
            "the embedder needs sentence-transformers: pip install sentence-transformers"
        ) from exc
    return SentenceTransformer(model, device="cuda" if torch.cuda.is_available() else "cpu")
