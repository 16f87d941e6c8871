"""Deterministic fakes for the retrieval tests, importable by helpers that run in a subprocess."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np


class HashingEmbedder:
    """Bag of words hashed into `dimension` buckets, L2-normalised: texts sharing words score high."""

    def __init__(self, name: str = "fake-hashing-64", dimension: int = 64) -> None:
        self.name = name
        self.dimension = dimension
        self.calls = 0
        self.texts: list[str] = []
        """Every text embedded so far, in order: what a test counts to see what was embedded again."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                bucket = int(hashlib.sha256(word.encode()).hexdigest()[:8], 16) % self.dimension
                vectors[row, bucket] += 1.0
            if not vectors[row].any():
                vectors[row, 0] = 1.0  # an empty text still needs a unit vector
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
