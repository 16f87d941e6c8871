"""Packing: first-fit decreasing rows, and no attention across the examples sharing a row."""

from __future__ import annotations

import pytest

from tests.training.conftest import chat
from training.batching import TokenizedExample, collate
from training.data import IGNORE_INDEX, tokenize_example
from training.packing import block_causal_mask, collate_packed, pack_rows

QA = [
    ("Who founded Lumora?", "Marisol Okafor-Lindqvist founded Lumora in a garage by the river."),
    ("hi", "Hello!"),
    ("What is the mascot?", "The mascot is a red fox called Ember."),
    ("When was the first store opened, and where?", "In 1998, in Brannock Falls."),
    ("Colour?", "Red."),
]


def test_rows_are_first_fit_decreasing_and_never_overfull():
    lengths = [5, 3, 8, 2, 4, 6]
    rows = pack_rows(lengths, max_length=10)
    assert rows == [[2, 3], [5, 4], [0, 1]]
    assert sorted(i for row in rows for i in row) == list(range(6))
    assert all(sum(lengths[i] for i in row) <= 10 for row in rows)


def test_packed_rows_restart_positions_and_unlabel_each_examples_first_token():
    a, b = TokenizedExample([1, 2, 3], [1, 2, 3]), TokenizedExample([4, 5], [4, 5])
    batch = collate_packed([[a, b], [b]], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5], [4, 5, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]]
    assert batch["labels"].tolist() == [
        [IGNORE_INDEX, 2, 3, IGNORE_INDEX, 5],
        [IGNORE_INDEX, 5, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX],
    ]
    assert batch["attention_mask"].shape == (2, 1, 5, 5)


def test_the_mask_is_causal_within_each_segment_only():
    import torch

    mask = block_causal_mask(torch.tensor([[0, 0, 1, 1, -1]]))[0, 0].int().tolist()
    assert mask == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 0, 0, 1],  # padding sees only itself: no fully masked row (SDPA would give NaN)
    ]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_a_packed_forward_gives_each_example_the_logits_it_gets_alone(tiny_model_dir, tokenizer, attn):
    """If any token attended across examples, its logits would differ from the example's solo run."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        tiny_model_dir, dtype=torch.float32, attn_implementation=attn
    )
    model.eval()
    examples = [TokenizedExample(*tokenize_example(tokenizer, chat(q, a)["messages"], 64)) for q, a in QA]
    rows = [[examples[i] for i in row] for row in pack_rows([len(e.input_ids) for e in examples], 96)]
    assert len(rows) < len(examples) and any(len(row) > 1 for row in rows)  # some really share a row
    packed = collate_packed(rows, tokenizer.pad_token_id)
    if attn == "eager":  # eager adds the mask to the scores: it wants 0 / -inf, not booleans
        packed["attention_mask"] = torch.zeros(packed["attention_mask"].shape).masked_fill(
            ~packed["attention_mask"], torch.finfo(torch.float32).min
        )
    with torch.no_grad():
        logits = model(**{k: v for k, v in packed.items() if k != "labels"}).logits
        for r, row in enumerate(rows):
            start = 0
            for example in row:
                alone = model(input_ids=torch.tensor([example.input_ids])).logits[0]
                stop = start + len(example.input_ids)
                torch.testing.assert_close(logits[r, start:stop], alone, atol=1e-4, rtol=1e-4)
                start = stop


def test_packed_and_padded_batches_give_the_same_assistant_loss(tiny_model_dir, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from training.recipe import assistant_loss

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    examples = [TokenizedExample(*tokenize_example(tokenizer, chat(q, a)["messages"], 64)) for q, a in QA]
    rows = [[examples[i] for i in row] for row in pack_rows([len(e.input_ids) for e in examples], 96)]
    with torch.no_grad():
        padded = assistant_loss(model, collate(examples, tokenizer.pad_token_id))
        packed = assistant_loss(model, collate_packed(rows, tokenizer.pad_token_id))
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)
