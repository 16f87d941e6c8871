"""Length-grouped batching and dynamic padding."""

from __future__ import annotations

from training.batching import TokenizedExample, collate, length_grouped_batches
from training.data import IGNORE_INDEX


def test_batches_group_similar_lengths_in_a_seeded_order():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4]
    batches = length_grouped_batches(lengths, batch_size=3, seed=1)
    assert sorted(i for batch in batches for i in batch) == list(range(8))
    assert sorted(sorted(lengths[i] for i in batch) for batch in batches) == [[1, 2, 3], [4, 5, 7], [8, 9]]
    assert batches == length_grouped_batches(lengths, batch_size=3, seed=1)
    orders = {tuple(map(tuple, length_grouped_batches(lengths, 3, seed))) for seed in range(10)}
    assert len(orders) > 1


def test_collate_pads_right_and_masks_padding():
    batch = collate([TokenizedExample([5, 6, 7], [-100, 6, 7]), TokenizedExample([8], [8])], pad_id=2)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 2, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]
