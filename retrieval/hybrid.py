"""Pure helpers for combining and narrowing search results: rank fusion, recency decay, metadata filters.

Nothing here touches an index or a model: rankings are lists of chunk int ids, chunks are `core.types.Chunk`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from core.types import Chunk

RRF_K = 60
"""The constant of Cormack et al. (2009): large enough that rank 1 and rank 2 differ little, so that a hit
found by both rankers beats one ranked first by only one of them."""

SECONDS_PER_DAY = 86_400.0

ChunkFilter = Callable[[Chunk], bool]
"""A predicate over chunks: True keeps the chunk."""


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Fuse rankings (ids, best first) by RRF: `score(d) = sum_i weights[i] / (k + rank_i(d))`, ranks from 1.

    Ids missing from a ranking get nothing from it; an id repeated within one ranking counts at its best
    rank only. Returns every id with its fused score, best first; ties keep the order in which the ids were
    first seen (ranking by ranking, top to bottom), so the result is deterministic.
    """
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[int] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    # sorted() is stable: equal scores stay in first-seen (insertion) order.
    return sorted(fused.items(), key=lambda pair: -pair[1])


def recency_weight(age_days: float, half_life_days: float) -> float:
    """`0.5 ** (age / half_life)`: 1 for a document changed now, 0.5 after one half-life, and so on.

    A negative age (a clock skewed into the future) counts as 0, so the weight never exceeds 1.
    """
    if half_life_days <= 0:
        raise ValueError(f"half-life must be positive, got {half_life_days} days")
    return 0.5 ** (max(age_days, 0.0) / half_life_days)


def age_days(modified: float, now: float) -> float:
    """Days between a POSIX timestamp `modified` and `now`."""
    return (now - modified) / SECONDS_PER_DAY


def source_prefix(prefix: str) -> ChunkFilter:
    """Keeps chunks whose source id starts with `prefix` (e.g. `"policies/"`)."""
    return lambda chunk: chunk.source_id.startswith(prefix)


def source_glob(pattern: str) -> ChunkFilter:
    """Keeps chunks whose source id matches the shell-style `pattern` (`*` also crosses `/`)."""
    return lambda chunk: fnmatch.fnmatchcase(chunk.source_id, pattern)


def has_tag(tag: str) -> ChunkFilter:
    """Keeps chunks with `tag` in `chunk.metadata["tags"]` (a list of strings, or one string)."""

    def predicate(chunk: Chunk) -> bool:
        tags = chunk.metadata.get("tags", ())
        return tag == tags if isinstance(tags, str) else tag in tags

    return predicate


def all_of(filters: Iterable[ChunkFilter]) -> ChunkFilter:
    """Keeps chunks that every filter keeps (all chunks when there are none)."""
    predicates = list(filters)
    return lambda chunk: all(predicate(chunk) for predicate in predicates)


def filters_from_spec(spec: Mapping[str, Any]) -> ChunkFilter:
    """A filter from a JSON-style spec, e.g. from a request: all the given conditions must hold.

    Keys: `source_prefix` (str), `source_glob` (str), `tags` (list of str: every one must be present).
    """
    unknown = set(spec) - {"source_prefix", "source_glob", "tags"}
    if unknown:
        raise ValueError(f"unknown filter keys: {sorted(unknown)}")
    predicates: list[ChunkFilter] = []
    if "source_prefix" in spec:
        predicates.append(source_prefix(str(spec["source_prefix"])))
    if "source_glob" in spec:
        predicates.append(source_glob(str(spec["source_glob"])))
    tags = spec.get("tags", [])
    predicates.extend(has_tag(str(tag)) for tag in ([tags] if isinstance(tags, str) else tags))
    return all_of(predicates)
