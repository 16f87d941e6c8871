"""A refresh killed with SIGKILL in any phase leaves `current` intact, and the next writer just works.

Each case runs a real refresh in a subprocess (`crash_helper`) that kills itself at a named checkpoint.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import ChunkingSettings
from retrieval.refresh import delete_source, refresh_index, rollback
from retrieval.search import open_retriever
from retrieval.snapshots import SNAPSHOTS, current_snapshot_dir, list_snapshots
from retrieval.sources import load_documents
from tests.retrieval.fakes import HashingEmbedder

REPO = Path(__file__).parents[2]


def killed_at(phase: str, index_dir: Path, action: str, target: str) -> None:
    """Run the helper and check that it died by SIGKILL (not by an error, nor by finishing)."""
    command = [sys.executable, "-m", "tests.retrieval.crash_helper", phase, str(index_dir), action, target]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr


def hidden_leftovers(index_dir: Path) -> list[str]:
    names = [p.name for p in (index_dir / SNAPSHOTS).iterdir()] + [p.name for p in index_dir.iterdir()]
    return [name for name in names if name.startswith(".") and name != ".refresh.lock"]


def sources(index_dir: Path, query: str) -> list[str]:
    """What the current snapshot finds, best first: opening and searching it proves it intact."""
    retriever = open_retriever(index_dir, HashingEmbedder())
    try:
        return [hit.chunk.source_id for hit in retriever.search(query, 10)]
    finally:
        retriever.close()


@pytest.fixture
def index_dir(tmp_path: Path, corpus_dir: Path) -> Path:
    """An index of the corpus, and then a corpus with one new document that the index does not have."""
    index_dir = tmp_path / "index"
    refresh_index(
        load_documents(corpus_dir), HashingEmbedder(), ChunkingSettings(), index_dir, progress=False
    )
    (corpus_dir / "recall.md").write_text("# Recall\n\nThe Tidewick headlamp is recalled.\n")
    return index_dir


@pytest.mark.parametrize("phase", ["embedding", "write", "switch", "switched"])
def test_refresh_killed_in_any_phase_recovers(phase: str, index_dir: Path, corpus_dir: Path) -> None:
    before = current_snapshot_dir(index_dir).name
    killed_at(phase, index_dir, "refresh", str(corpus_dir))

    # `current` names a complete snapshot that serves: the old one, or the new one once switched.
    after_crash = current_snapshot_dir(index_dir).name
    assert (after_crash == before) == (phase != "switched")
    assert ("recall.md" in sources(index_dir, "tidewick headlamp recalled")) == (phase == "switched")
    if phase == "write":
        assert hidden_leftovers(index_dir), "the crash should have left a staging directory"

    result = refresh_index(
        load_documents(corpus_dir), HashingEmbedder(), ChunkingSettings(), index_dir, progress=False
    )
    assert result.status == ("unchanged" if phase == "switched" else "refreshed")
    assert sources(index_dir, "tidewick headlamp recalled")[0] == "recall.md"
    assert hidden_leftovers(index_dir) == []
    assert all(
        (index_dir / SNAPSHOTS / s.snapshot_id / "manifest.json").is_file() for s in list_snapshots(index_dir)
    )


def test_delete_killed_while_writing_recovers(index_dir: Path) -> None:
    before = current_snapshot_dir(index_dir).name
    killed_at("write", index_dir, "delete", "notes.txt")
    assert current_snapshot_dir(index_dir).name == before
    assert sources(index_dir, "stores open nine morning")[0] == "notes.txt"
    delete_source(index_dir, "notes.txt")
    assert "notes.txt" not in sources(index_dir, "stores open nine morning")
    assert hidden_leftovers(index_dir) == []


def test_any_writer_clears_what_a_crash_left(index_dir: Path, corpus_dir: Path) -> None:
    refresh_index(
        load_documents(corpus_dir), HashingEmbedder(), ChunkingSettings(), index_dir, progress=False
    )
    staging = index_dir / SNAPSHOTS / ".build-abc123"
    staging.mkdir()
    (staging / "dense.faiss").write_bytes(b"half")
    (index_dir / SNAPSHOTS / ".trash-20260101T000000Z-aaaaaa").mkdir()
    (index_dir / ".current-999-deadbeef").symlink_to("snapshots/gone")
    assert len(list_snapshots(index_dir)) == 2  # leftovers are never listed
    rollback(index_dir)
    assert hidden_leftovers(index_dir) == []
