"""Run one refresh (or deletion) that kills itself with SIGKILL at a named phase, for the crash tests.

    python -m tests.retrieval.crash_helper PHASE INDEX_DIR refresh CORPUS_DIR
    python -m tests.retrieval.crash_helper PHASE INDEX_DIR delete SOURCE_ID

PHASE is one `retrieval.refresh._checkpoint` is called with: embedding, write, switch or switched.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.settings import ChunkingSettings
from retrieval import refresh
from retrieval.sources import scan_documents
from tests.retrieval.fakes import HashingEmbedder


def main(phase: str, index_dir: str, action: str, target: str) -> None:
    refresh._crash_at = phase
    if action == "refresh":
        documents, _ = scan_documents(Path(target))
        refresh.refresh_index(
            documents, HashingEmbedder(), ChunkingSettings(), Path(index_dir), progress=False
        )
    else:
        refresh.delete_source(Path(index_dir), target)


if __name__ == "__main__":
    main(*sys.argv[1:])
