"""`lorag index build` and `lorag index refresh`: settings in, a new current snapshot out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.settings import Settings
from retrieval.embedders import Embedder, load_embedder
from retrieval.errors import GateRefusedError
from retrieval.gate import load_gate_questions, recall_gate
from retrieval.refresh import RefreshResult, refresh_index
from retrieval.search import Retriever, Snapshot
from retrieval.snapshots import build_snapshot, current_manifest, current_snapshot_dir
from retrieval.sources import scan_documents

DEMO_CORPUS = Path(__file__).parent / "demo_corpus"
log = logging.getLogger("lorag.index")


def corpus_dir(settings: Settings) -> Path:
    """The documents to index: the configured corpus, else the demo corpus shipped with lorag."""
    return settings.corpus_dir or DEMO_CORPUS


def build_index(settings: Settings, progress: bool = True) -> Path:
    """Chunk, embed and index the whole corpus into a new snapshot and make it current; returns its
    directory. Files that cannot be read are skipped (and logged)."""
    documents, _ = scan_documents(corpus_dir(settings), max_bytes=settings.index.max_document_bytes)
    embedder = load_embedder(settings.embedder, settings.cache_dir)
    return build_snapshot(
        documents,
        embedder,
        settings.chunking,
        settings.index_dir,
        progress=progress,
        **_snapshot_options(settings),
    )


def refresh(settings: Settings, progress: bool = True, embedder: Embedder | None = None) -> RefreshResult:
    """Bring the current snapshot up to date with the corpus, embedding only new and changed chunks
    (through the recall gate when `index.gate_questions` is set). A gateway passes its loaded `embedder`."""
    documents, skipped = scan_documents(corpus_dir(settings), max_bytes=settings.index.max_document_bytes)
    embedder = embedder or load_embedder(settings.embedder, settings.cache_dir)
    return refresh_index(
        documents,
        embedder,
        settings.chunking,
        settings.index_dir,
        progress=progress,
        skipped=skipped,
        gate=recall_gate_check(settings, embedder),
        **_snapshot_options(settings),
    )


def _snapshot_options(settings: Settings) -> dict[str, Any]:
    """What every snapshot writer takes from the settings: retention and the dense index kind."""
    return {
        "keep": settings.index.keep_snapshots,
        "index_kind": settings.index.kind,
        "index_params": settings.index.params,
    }


def recall_gate_check(settings: Settings, embedder: Embedder) -> Callable[[Path], None] | None:
    """The configured recall gate as a check on a published, not yet current, snapshot (or None)."""
    if settings.index.gate_questions is None:
        return None
    questions = load_gate_questions(settings.index.gate_questions)
    k, margin = settings.index.gate_k, settings.index.gate_margin

    def check(new_snapshot: Path) -> None:
        new = Retriever(Snapshot.open(new_snapshot), embedder)
        manifest = current_manifest(settings.index_dir)
        # A snapshot of another embedder cannot be searched with this one, and a rebuild for a new
        # embedder is a deliberate change: then the new snapshot is only scored, never compared.
        comparable = manifest is not None and manifest.embedder == embedder.name
        current = (
            Retriever(Snapshot.open(current_snapshot_dir(settings.index_dir)), embedder)
            if comparable
            else None
        )
        try:
            result = recall_gate(new, current, questions, k, margin)
        finally:
            new.close()
            if current is not None:
                current.close()
        if not result.passed:
            log.warning("refresh gate refused snapshot %s: %s", new_snapshot.name, result.reason)
            raise GateRefusedError(f"refresh refused by the recall gate: {result.reason}")
        log.info("refresh gate passed: %s", result.reason)

    return check
