"""`lorag index build`: settings in, a new current snapshot out."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from retrieval.chunking import chunker_config
from retrieval.embedders import load_embedder
from retrieval.errors import NoSnapshotError
from retrieval.snapshots import Manifest, build_snapshot, current_snapshot_dir
from retrieval.sources import load_documents

DEMO_CORPUS = Path(__file__).parent / "demo_corpus"


def corpus_dir(settings: Settings) -> Path:
    """The documents to index: the configured corpus, else the demo corpus shipped with lorag."""
    return settings.corpus_dir or DEMO_CORPUS


def build_index(settings: Settings, progress: bool = True) -> Path:
    """Chunk, embed and index the corpus into a new snapshot and make it current; returns its directory."""
    documents = load_documents(corpus_dir(settings))
    embedder = load_embedder(settings.embedder, settings.cache_dir)
    return build_snapshot(documents, embedder, settings.chunking, settings.index_dir, progress=progress)


def index_is_current(settings: Settings) -> bool:
    """True if the current snapshot already holds exactly the corpus, embedder and chunker configured."""
    try:
        manifest = Manifest.read(current_snapshot_dir(settings.index_dir))
    except NoSnapshotError:
        return False
    documents = {doc.source_id: doc.content_hash for doc in load_documents(corpus_dir(settings))}
    return (
        manifest.documents == documents
        and manifest.embedder == settings.embedder
        and manifest.chunking == chunker_config(settings.chunking)
    )
