"""The data that crosses package boundaries: chunks, search hits, citations and model names."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """A piece of a source document, the unit that is embedded, indexed and cited."""

    chunk_id: str
    """Content hash of (source id, text, chunker config): identical text in two documents gets two ids."""
    source_id: str
    """Stable id of the document the chunk came from (its path relative to the corpus root)."""
    text: str
    position: int = 0
    """Index of the chunk within its document."""
    title: str = ""
    """The nearest heading above the chunk, if any; shown with the source in prompts."""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A chunk returned by a search, with its score (cosine similarity for dense search)."""

    chunk: Chunk
    score: float
    """The ranking score of the search mode used: cosine (dense), BM25 (bm25) or fused RRF (hybrid)."""
    scores: dict[str, float] = field(default_factory=dict)
    """Each signal that ranked the hit, e.g. `{"dense": 0.81, "bm25": 7.2, "rrf": 0.032}`."""


@dataclass(frozen=True)
class Citation:
    """What a response tells the caller about one source used in its prompt (the `citations` extension)."""

    index: int
    """The source's number in the prompt ([1], [2], ...)."""
    source: str
    chunk_id: str
    score: float
    snapshot: str
    """The index snapshot the chunk was retrieved from."""
    revision: str = ""
    """The content hash of the document version the chunk was cut from."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used in responses."""
        return asdict(self)


@dataclass(frozen=True)
class ModelRef:
    """A model name as clients, the registry and reports write it: a route or adapter `name`, optionally
    pinned to an adapter `version` as `name@version` (`demo@v2`, `demo+rag@v2`).

    Parse it once, where the text arrives (a request's `model`, a CLI argument); pass the parsed value on."""

    name: str
    version: str | None = None
    """The pinned adapter version (`v2`); None: not pinned."""

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """`demo@v3` → `ModelRef("demo", "v3")`; text without `@`, or with nothing after it, is not pinned
        (and keeps its `@`, so that it names no route)."""
        name, at, version = text.partition("@")
        return cls(name, version) if at and version else cls(text)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name
