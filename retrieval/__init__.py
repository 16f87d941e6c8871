"""Evolving knowledge: documents → chunks → embeddings → immutable index snapshots → search.

The modules follow the data, one role each: `sources` (load documents, skip bad ones), `chunking` (pure),
`embedders`, `index` (FAISS: flat, HNSW, IVF), `bm25`, `store` (SQLite), `snapshots` (the one writer and the
atomic `current` pointer), `locking` (one writer at a time), `refresh` (incremental refresh, delete,
rollback), `gate` (recall gate), `hybrid` (pure fusion, filters, recency), `search`, `build` (settings in,
snapshot out) and `bench`. Nothing heavy is imported here: `import retrieval` must stay cheap and must not
import torch.
"""
