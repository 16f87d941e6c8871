"""lorag training: LoRA adapters that carry static knowledge, and the registry that versions them.

`data` validates chat JSONL and masks the loss to assistant tokens, `batching` groups and pads,
`recipe` is the fine-tuning recipe (`TrainConfig`, `train`), `registry` stores immutable adapter versions
behind an atomically switched `current` alias, and `demo_data` builds the demo adapter's dataset.
"""
