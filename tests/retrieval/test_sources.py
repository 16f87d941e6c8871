"""Loading a corpus directory into documents."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from retrieval.errors import CorpusNotFoundError
from retrieval.sources import Document, load_documents


def test_loads_markdown_and_text_recursively_sorted(corpus_dir: Path) -> None:
    (corpus_dir / "extra.markdown").write_text("# Extra\n")
    (corpus_dir / "script.py").write_text("print('not knowledge')\n")
    (corpus_dir / ".git").mkdir()
    (corpus_dir / ".git" / "notes.md").write_text("tooling\n")
    ids = [doc.source_id for doc in load_documents(corpus_dir)]
    assert ids == ["extra.markdown", "notes.txt", "policies/returns.md", "pricing.md"]


def test_document_fields(corpus_dir: Path) -> None:
    docs = {doc.source_id: doc for doc in load_documents(corpus_dir)}
    pricing = docs["pricing.md"]
    path = corpus_dir / "pricing.md"
    assert pricing.text == path.read_text()
    assert pricing.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert pricing.modified == path.stat().st_mtime
    assert pricing.title == "Price list"
    assert docs["notes.txt"].title == "notes"


def test_title_is_the_first_level_one_heading() -> None:
    text = "Intro\n\n## Not this\n\n# Returns policy #\n\n# Later\n"
    assert Document.from_text("x.md", text).title == "Returns policy"


def test_crlf_files_read_like_lf(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_bytes(b"# A\r\n\r\nText.\r\n")
    [doc] = load_documents(tmp_path)
    assert doc.text == "# A\n\nText.\n"


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusNotFoundError, match="does not exist"):
        load_documents(tmp_path / "nowhere")


def test_non_utf8_file_is_skipped_by_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "ok.md").write_text("Fine.\n")
    assert [doc.source_id for doc in load_documents(tmp_path)] == ["ok.md"]
    assert "skipped latin1.txt: is not UTF-8" in caplog.text


def test_file_metadata_is_its_path(corpus_dir: Path) -> None:
    docs = {doc.source_id: doc for doc in load_documents(corpus_dir)}
    assert docs["policies/returns.md"].metadata == {"path": "policies/returns.md"}
