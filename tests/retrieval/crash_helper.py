"""Run one refresh (or deletion) that kills itself with SIGKILL at a named phase, for the crash tests.

    python -m tests.retrieval.crash_helper PHASE INDEX_DIR refresh CORPUS_DIR
    python -m tests.retrieval.crash_helper PHASE INDEX_DIR delete SOURCE_ID

PHASE is one a writer's `on_phase` is called with (`retrieval.pipeline.Phase`): embedding, write, switch
or switched.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from core.settings import ChunkingSettings
from retrieval import refresh
from retrieval.sources import scan_documents
from tests.retrieval.fakes import HashingEmbedder


def kill_at(phase: str) -> Callable[[str], None]:
    """An `on_phase` that SIGKILLs this process when the writer reaches `phase`."""

    def on_phase(reached: str) -> None:
        if reached == phase:
            os.kill(os.getpid(), signal.SIGKILL)

    return on_phase


def main(phase: str, index_dir: str, action: str, target: str) -> None:
    if action == "refresh":
        documents, _ = scan_documents(Path(target))
        refresh.refresh_index(
            documents,
            HashingEmbedder(),
            ChunkingSettings(),
            Path(index_dir),
            progress=False,
            on_phase=kill_at(phase),
        )
    else:
        refresh.delete_source(Path(index_dir), target, on_phase=kill_at(phase))


if __name__ == "__main__":
    main(*sys.argv[1:])
