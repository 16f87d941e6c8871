"""A sentence-transformers model run from an exported file by ONNX Runtime or OpenVINO.

`load_exported` returns an `ExportedModel` that offers the part of `SentenceTransformer`'s interface lorag
uses (`encode`, `tokenizer`, `get_embedding_dimension`), so `SentenceTransformerEmbedder` runs either.
It imports neither torch nor sentence-transformers: tokenizer → runtime → pooling → normalisation, the
last two in numpy, as sentence-transformers' Pooling and Normalize modules compute them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.embedder_export import pooling_mode

Runner = Callable[[dict[str, np.ndarray]], np.ndarray]
"""Token ids, masks and type ids in, the last hidden state `(batch, length, width)` out."""


class ExportedModel:
    """Tokenises, runs the exported transformer, pools and normalises, batch by batch."""

    def __init__(
        self, tokenizer: Any, runner: Runner, pooling: str, max_length: int, lower_case: bool
    ) -> None:
        self.tokenizer = tokenizer
        self.runner = runner
        self.pooling = pooling
        self.max_length = max_length
        self.lower_case = lower_case
        self._dimension: int | None = None

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        **_: Any,
    ) -> np.ndarray:
        """`(len(sentences), dimension)` float32 rows; `SentenceTransformer.encode`'s other options (progress
        bar, numpy conversion) are accepted and have nothing to do here."""
        texts = [text.lower() for text in sentences] if self.lower_case else list(sentences)
        # Longest first, like sentence-transformers: batches of similar length waste little on padding.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        rows: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(texts), batch_size):
            picked = order[start : start + batch_size]
            vectors = self._embed_batch([texts[i] for i in picked], normalize_embeddings)
            for i, vector in zip(picked, vectors, strict=True):
                rows[i] = vector
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.get_embedding_dimension()))

    def get_embedding_dimension(self) -> int:
        """Width of the vectors (known after the first batch; one is run to find it)."""
        if self._dimension is None:
            self._dimension = int(self._embed_batch(["dimension"], False).shape[1])
        return self._dimension

    def _embed_batch(self, texts: list[str], normalize: bool) -> np.ndarray:
        encoded = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        feed = {name: np.asarray(value, dtype=np.int64) for name, value in encoded.items()}
        hidden = self.runner(feed)
        pooled = _pool(hidden, feed["attention_mask"], self.pooling)
        self._dimension = pooled.shape[1]
        if normalize:
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return np.array(hidden[:, 0], dtype=np.float32)
    weights = mask[..., None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def load_exported(model_dir: Path, backend: str, model_file: Path) -> ExportedModel:
    """The model in `model_dir` (its tokenizer and pooling) running `model_file` on `backend`."""
    from transformers import AutoTokenizer

    config_file = model_dir / "sentence_bert_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    max_length = int(config.get("max_seq_length") or tokenizer.model_max_length)
    runner = _onnxruntime(model_file) if backend == "onnx" else _openvino(model_file)
    return ExportedModel(
        tokenizer, runner, pooling_mode(model_dir), max_length, bool(config.get("do_lower_case"))
    )


def _onnxruntime(model_file: Path) -> Runner:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - a dependency of lorag
        raise ImportError("the onnx embedder backend needs onnxruntime: pip install onnxruntime") from exc
    # Thread count: ONNX Runtime's default, one per physical core (what torch uses too).
    session = onnxruntime.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    inputs = {item.name for item in session.get_inputs()}

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        return session.run(None, {k: v for k, v in feed.items() if k in inputs})[0]

    return run


def _openvino(model_file: Path) -> Runner:
    try:
        import openvino
    except ImportError as exc:  # pragma: no cover - a dependency of lorag
        raise ImportError("the openvino embedder backend needs openvino: pip install openvino") from exc
    # bf16 arithmetic where the CPU has bf16 instructions (OpenVINO's default) is most of its speed-up.
    # Threads are not pinned to cores: on a machine shared with other jobs, pinned threads waited on busy
    # cores and the same run went from 2.2x torch's chunks/s to 1.3x.
    compiled = openvino.Core().compile_model(str(model_file), "CPU", {"ENABLE_CPU_PINNING": False})
    inputs = {name for port in compiled.inputs for name in port.get_names()}
    request = compiled.create_infer_request()

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        result = request.infer({k: v for k, v in feed.items() if k in inputs})
        return np.asarray(result[compiled.output(0)])

    return run
