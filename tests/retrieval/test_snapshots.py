"""Building snapshots, the atomic `current` pointer and the manifest."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from core.settings import ChunkingSettings
from retrieval.chunking import chunker_config
from retrieval.embedders import Embedder
from retrieval.errors import CorruptSnapshotError, NoSnapshotError, RetrievalError
from retrieval.snapshots import (
    CURRENT,
    Manifest,
    build_snapshot,
    current_snapshot_dir,
    list_snapshots,
    set_current,
)
from retrieval.sources import Document

CHUNKING = ChunkingSettings()


def build(documents: list[Document], embedder: Embedder, index_dir: Path) -> Path:
    return build_snapshot(documents, embedder, CHUNKING, index_dir, progress=False)


def test_build_lays_out_a_complete_snapshot(
    tmp_path: Path, documents: list[Document], embedder: Embedder
) -> None:
    index_dir = tmp_path / "index"
    path = build(documents, embedder, index_dir)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", path.name)
    assert path == index_dir / "snapshots" / path.name
    assert sorted(p.name for p in path.iterdir()) == [
        "bm25",
        "chunks.sqlite",
        "dense.faiss",
        "manifest.json",
        "vectors.npz",
    ]
    manifest = Manifest.read(path)
    assert manifest.snapshot_id == path.name
    assert manifest.parent is None
    assert (manifest.embedder, manifest.dimension) == ("fake-hashing-64", 64)
    assert manifest.chunking == chunker_config(CHUNKING)
    assert manifest.documents == {d.source_id: d.content_hash for d in documents}
    assert manifest.chunk_count == 5
    assert manifest.modified == {d.source_id: d.modified for d in documents}
    assert manifest.bm25 is True


def test_current_is_a_relative_symlink(tmp_path: Path, documents: list[Document], embedder: Embedder) -> None:
    path = build(documents, embedder, tmp_path / "index")
    assert os.readlink(tmp_path / "index" / CURRENT) == f"snapshots/{path.name}"
    assert current_snapshot_dir(tmp_path / "index") == path


def test_second_build_keeps_the_first_and_moves_current(
    tmp_path: Path, documents: list[Document], embedder: Embedder
) -> None:
    index_dir = tmp_path / "index"
    first = build(documents, embedder, index_dir)
    changed = [*documents, Document.from_text("new.md", "# New\n\nA brand new notice.\n")]
    second = build(changed, embedder, index_dir)
    assert first != second and (first / "manifest.json").is_file()
    assert current_snapshot_dir(index_dir) == second
    assert Manifest.read(second).parent == first.name
    assert [m.snapshot_id for m in list_snapshots(index_dir)] == [first.name, second.name]


def test_same_content_twice_gets_two_snapshots(
    tmp_path: Path, documents: list[Document], embedder: Embedder
) -> None:
    first = build(documents, embedder, tmp_path / "index")
    second = build(documents, embedder, tmp_path / "index")
    assert first != second and (first / "manifest.json").is_file()
    # The short hash is over the content only, so it repeats; the name is made unique.
    assert first.name.split("-")[1] == second.name.split("-")[1]


def test_failed_build_leaves_nothing_behind(
    tmp_path: Path, documents: list[Document], embedder: Embedder, make_embedder: type
) -> None:
    index_dir = tmp_path / "index"
    first = build(documents, embedder, index_dir)
    broken = make_embedder()
    broken.embed = lambda texts: np.zeros((len(texts), 3), dtype=np.float32)  # the wrong dimension
    with pytest.raises(ValueError, match="dimension"):
        build(documents, broken, index_dir)
    assert sorted(p.name for p in (index_dir / "snapshots").iterdir()) == [first.name]
    assert current_snapshot_dir(index_dir) == first


def test_no_snapshot_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(NoSnapshotError, match="lorag index build"):
        current_snapshot_dir(tmp_path / "index")
    assert list_snapshots(tmp_path / "index") == []


def test_dangling_current_is_reported(tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / CURRENT).symlink_to("snapshots/gone")
    with pytest.raises(CorruptSnapshotError, match="not a complete snapshot"):
        current_snapshot_dir(tmp_path / "index")


def test_set_current_refuses_an_incomplete_snapshot(tmp_path: Path) -> None:
    (tmp_path / "index" / "snapshots" / "half").mkdir(parents=True)
    with pytest.raises(CorruptSnapshotError):
        set_current(tmp_path / "index", "half")


def test_nothing_to_index_is_an_error(tmp_path: Path, embedder: Embedder) -> None:
    with pytest.raises(RetrievalError, match="no documents"):
        build([], embedder, tmp_path / "index")


def test_duplicate_sources_are_refused(tmp_path: Path, documents: list[Document], embedder: Embedder) -> None:
    with pytest.raises(RetrievalError, match="twice"):
        build([documents[0], documents[0]], embedder, tmp_path / "index")


def test_progress_bar_goes_to_stderr(
    tmp_path: Path, documents: list[Document], embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    build_snapshot(documents, embedder, CHUNKING, tmp_path / "index", progress=True)
    assert "embedding" in capsys.readouterr().err
    build_snapshot(documents, embedder, CHUNKING, tmp_path / "index", progress=False)
    assert capsys.readouterr().err == ""
