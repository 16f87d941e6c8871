"""Batches of similar length with dynamic padding, in a seeded random order.

Sorting by length before grouping keeps padding small (on a CPU every padded token costs as much as a
real one); shuffling the batches, not the examples, keeps the order random without undoing that.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from training.data import IGNORE_INDEX

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TokenizedExample:
    """One example as token ids and labels (`IGNORE_INDEX` where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, batches in a random order fixed by `seed`.

    Ties in length are broken by index so the grouping does not depend on sort stability.
    """
    order = sorted(range(len(lengths)), key=lambda index: (lengths[index], index))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    random.Random(seed).shuffle(batches)
    return batches


def collate(examples: Sequence[TokenizedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch to its longest example: `input_ids`, `attention_mask` and `labels` tensors.

    Padding is masked out of attention and of the loss, so the pad id only has to be a valid token.
    """
    import torch

    width = max(len(example.input_ids) for example in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        length = len(example.input_ids)
        input_ids[row, :length] = torch.tensor(example.input_ids)
        labels[row, :length] = torch.tensor(example.labels)
        attention_mask[row, :length] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
