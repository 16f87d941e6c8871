"""Evolving knowledge: documents → chunks → embeddings → immutable index snapshots → search.

The modules follow the data, one role each: `sources` (load documents), `chunking` (pure), `embedders`,
`index` (FAISS), `store` (SQLite), `snapshots` (build and the atomic `current` pointer) and `search`.
Nothing heavy is imported here: `import retrieval` must stay cheap and must not import torch.
"""
