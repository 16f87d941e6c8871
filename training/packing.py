"""Packing: several examples share one row, and none of them can see the others.

A batch of conversations of mixed length, padded to its longest, spends much of its compute on padding.
Packed, the same conversations fill rows of up to `max_length` tokens back to back. Three things keep each
example's computation what it would be alone: position ids restart at 0 for every example (RoPE sees the
same positions), a block-diagonal causal mask stops attention at example boundaries, and the first token of
every example carries no label (it would otherwise be "predicted" from the previous example's last token).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from training.batching import TokenizedExample
from training.data import IGNORE_INDEX

if TYPE_CHECKING:
    import torch


def pack_rows(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """Example indices grouped into rows of at most `max_length` tokens, by first-fit decreasing.

    Longest first, each example goes into the first row with room for it; FFD is within 22% of the fewest
    possible rows and is deterministic (ties in length are broken by index). Examples longer than
    `max_length` get a row of their own (the data module has already cut them, so this does not happen in
    the recipe).
    """
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        row = next((r for r, free in enumerate(room) if free >= lengths[index]), None)
        if row is None:
            rows.append([])
            room.append(max_length)
            row = len(rows) - 1
        rows[row].append(index)
        room[row] -= lengths[index]
    return rows


def collate_packed(rows: Sequence[Sequence[TokenizedExample]], pad_id: int) -> dict[str, torch.Tensor]:
    """Packed rows as a batch: `input_ids`, `labels`, `position_ids` and a 4D boolean `attention_mask`.

    Rows are right-padded to the longest row. The mask has shape (rows, 1, width, width), True where a
    query may attend to a key: causal and within the same example. Transformers passes a 4D mask to the
    attention kernel unchanged, and SDPA takes boolean masks as they are. Padding is a segment of its own,
    so no query row is fully masked (an all-masked row makes SDPA return NaN, which would reach the
    gradients through the backward pass even though no loss is taken there).
    """
    import torch

    width = max(sum(len(example.input_ids) for example in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    segments = torch.full((len(rows), width), -1, dtype=torch.long)  # -1: padding
    for r, row in enumerate(rows):
        start = 0
        for s, example in enumerate(row):
            stop = start + len(example.input_ids)
            input_ids[r, start:stop] = torch.tensor(example.input_ids)
            labels[r, start:stop] = torch.tensor(example.labels)
            labels[r, start] = IGNORE_INDEX  # nothing before it in this example to predict it from
            position_ids[r, start:stop] = torch.arange(stop - start)
            segments[r, start:stop] = s
            start = stop
        position_ids[r, start:] = torch.arange(width - start)
    return {
        "input_ids": input_ids,
        "labels": labels,
        "position_ids": position_ids,
        "attention_mask": block_causal_mask(segments),
    }


def block_causal_mask(segments: torch.Tensor) -> torch.Tensor:
    """(rows, 1, width, width) booleans: query i sees key j iff j <= i and both are in the same segment."""
    import torch

    width = segments.shape[1]
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    same = segments[:, :, None] == segments[:, None, :]
    return (same & causal)[:, None, :, :]
