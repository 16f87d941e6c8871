"""HTML pages and JSONL records as documents, and bad inputs skipped by path instead of failing the scan."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.settings import ChunkingSettings
from retrieval.chunking import chunk_document
from retrieval.sources import Document, Skipped, html_to_text, scan_documents

PAGE = """<!doctype html>
<html><head><title>Store  guide</title><style>body { color: red }</style>
<script>var hidden = "never indexed";</script></head>
<body>
  <nav><a href="/">Home</a></nav>
  <h1>Opening hours</h1>
  <p>Our shops open at <b>nine</b>
     in the morning &amp; close at six.</p>
  <h2>Holidays</h2>
  <p>Closed on<br>public holidays.</p>
  <ul><li>Stockholm</li><li>Oslo</li></ul>
  <pre>
# not a heading
  indented
</pre>
  <noscript>Enable JavaScript</noscript>
</body></html>
"""


def write(root: Path, name: str, content: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def jsonl(*records: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def test_html_text_keeps_headings_and_blocks_and_drops_scripts_and_navigation() -> None:
    text, title = html_to_text(PAGE)
    assert title == "Store guide"
    assert text == (
        "# Opening hours\n\n"
        "Our shops open at nine in the morning & close at six.\n\n"
        "## Holidays\n\n"
        "Closed on\npublic holidays.\n\n"
        "Stockholm\n\nOslo\n\n"
        "```\n# not a heading\n  indented\n```\n"
    )


def test_html_page_is_chunked_by_its_headings(tmp_path: Path) -> None:
    write(tmp_path, "site/hours.html", PAGE)
    [doc], skipped = scan_documents(tmp_path)
    assert skipped == []
    assert (doc.source_id, doc.title, doc.metadata) == (
        "site/hours.html",
        "Opening hours",
        {"path": "site/hours.html"},
    )
    titles = [c.title for c in chunk_document(doc, ChunkingSettings())]
    assert titles == ["Opening hours", "Holidays"]


def test_html_title_element_names_a_page_without_h1(tmp_path: Path) -> None:
    write(tmp_path, "a.htm", "<title>Returns</title><p>Thirty days.</p>")
    [doc], _ = scan_documents(tmp_path)
    assert (doc.title, doc.text) == ("Returns", "Thirty days.\n")


def test_jsonl_records_are_documents(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kb/faq.jsonl",
        jsonl(
            {
                "id": "ship",
                "text": "Tents ship in two days.",
                "title": "Shipping",
                "metadata": {"tags": ["ops"]},
            },
            {"id": 7, "text": "# Warranty\n\nTwo years.", "updated_at": "2026-11-20T10:00:00+01:00"},
            {"id": "dated", "text": "Sale ends Sunday.", "updated_at": "2026-11-20"},
        ),
    )
    docs, skipped = scan_documents(tmp_path)
    assert skipped == []
    by_id = {doc.source_id: doc for doc in docs}
    assert list(by_id) == ["kb/faq.jsonl#7", "kb/faq.jsonl#dated", "kb/faq.jsonl#ship"]
    ship = by_id["kb/faq.jsonl#ship"]
    assert (ship.text, ship.title) == ("Tents ship in two days.", "Shipping")
    assert ship.metadata == {"path": "kb/faq.jsonl", "tags": ["ops"]}
    assert ship.modified == path.stat().st_mtime
    assert by_id["kb/faq.jsonl#7"].title == "Warranty"
    assert by_id["kb/faq.jsonl#7"].modified == datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp()
    assert by_id["kb/faq.jsonl#dated"].modified == datetime(2026, 11, 20, tzinfo=UTC).timestamp()
    assert by_id["kb/faq.jsonl#dated"].title == "dated"


def test_record_title_and_metadata_are_part_of_its_revision(tmp_path: Path) -> None:
    def revision(record: dict[str, object]) -> str:
        write(tmp_path, "r.jsonl", jsonl(record))
        [doc], _ = scan_documents(tmp_path)
        return doc.content_hash

    base = {"id": 1, "text": "Same text."}
    hashes = {
        revision(base),
        revision({**base, "title": "New title"}),
        revision({**base, "metadata": {"tags": ["x"]}}),
    }
    assert len(hashes) == 3
    assert revision({**base, "updated_at": "2030-01-01"}) == revision(base)


def test_bad_jsonl_records_are_skipped_by_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "bad.jsonl",
        jsonl(
            {"id": "ok", "text": "Fine."},
            "{not json",
            {"id": "no-text"},
            {"text": "no id"},
            ["not", "an", "object"],
            {"id": "ok", "text": "Duplicate."},
            {"id": "when", "text": "Bad date.", "updated_at": "next tuesday"},
            {"id": "meta", "text": "Bad metadata.", "metadata": ["x"]},
        )
        + "\n",
    )
    docs, skipped = scan_documents(tmp_path)
    assert [doc.source_id for doc in docs] == ["bad.jsonl#ok"]
    assert [s.path for s in skipped] == [f"bad.jsonl:{line}" for line in range(2, 9)]
    reasons = " | ".join(s.reason for s in skipped)
    for expected in ("Expecting", "no `text`", "no string or integer `id`", "not a JSON object"):
        assert expected in reasons
    assert "duplicate record id 'bad.jsonl#ok'" in reasons
    assert "'next tuesday' is not an ISO 8601 date" in reasons
    assert "`metadata` is not an object" in reasons


def test_bad_files_are_skipped_by_path_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "good.md", "# Good\n\nKept.\n")
    write(tmp_path, "latin1.txt", "café".encode("latin-1"))
    write(tmp_path, "blank.md", "  \n\n")
    write(tmp_path, "scripts-only.html", "<script>x()</script><style>p{}</style>")
    write(tmp_path, "empty.jsonl", "\n\n")
    write(tmp_path, "huge.txt", "word " * 400)
    locked = write(tmp_path, "sub/locked.md", "# Secret\n")
    real_read_bytes = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        # Tests run as root, where chmod 000 does not stop a read.
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    docs, skipped = scan_documents(tmp_path, max_bytes=1000)
    assert [doc.source_id for doc in docs] == ["good.md"]
    reasons = {s.path: s.reason for s in skipped}
    assert set(reasons) == {
        "blank.md",
        "empty.jsonl",
        "huge.txt",
        "latin1.txt",
        "scripts-only.html",
        "sub/locked.md",
    }
    assert reasons["latin1.txt"].startswith("is not UTF-8 text")
    assert reasons["blank.md"] == reasons["scripts-only.html"] == "has no text"
    assert reasons["empty.jsonl"] == "has no records"
    assert reasons["huge.txt"] == "2000 bytes is over the 1000-byte limit"
    assert reasons["sub/locked.md"] == "cannot be read: Permission denied"
    assert all(f"skipped {path}: " in caplog.text for path in reasons)


def test_byte_order_mark_and_crlf_do_not_change_the_document(tmp_path: Path) -> None:
    write(tmp_path, "a.md", b"\xef\xbb\xbf# Title\r\n\r\nText.\r\n")
    [doc], _ = scan_documents(tmp_path)
    assert doc == Document.from_text("a.md", "# Title\n\nText.\n", doc.modified, metadata={"path": "a.md"})


def test_skipped_is_a_plain_record() -> None:
    assert Skipped("a.md", "has no text") == Skipped("a.md", "has no text")


def test_jsonl_is_limited_per_record_not_per_file(tmp_path: Path) -> None:
    records = [{"id": n, "text": f"Record number {n}."} for n in range(20)]
    write(tmp_path, "many.jsonl", jsonl(*records, {"id": "big", "text": "word " * 100}))
    write(tmp_path, "mixed.jsonl", b'{"id": 1, "text": "caf\xe9"}\n{"id": 2, "text": "Fine."}\r\n')
    docs, skipped = scan_documents(tmp_path, max_bytes=300)
    assert len(docs) == 21 and "mixed.jsonl#2" in {doc.source_id for doc in docs}
    assert [(s.path, s.reason.split(":")[0]) for s in skipped] == [
        ("many.jsonl:21", "record is over the 300-byte limit"),
        ("mixed.jsonl:1", "is not UTF-8 text"),
    ]
