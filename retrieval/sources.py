"""Load the documents of a corpus directory: Markdown, plain text, HTML and JSONL records, recursively.

A file that cannot be used (unreadable, not UTF-8, empty, too large, a malformed JSONL record) is reported
as `Skipped` and left out: one bad file must not stop the rest of the corpus from being indexed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from retrieval.errors import CorpusNotFoundError

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
JSONL_SUFFIXES = frozenset({".jsonl"})
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
"""Files (and JSONL lines) larger than this are skipped: they are exports or data dumps, not knowledge."""


@dataclass(frozen=True)
class Document:
    """One document of the corpus (a file, or one JSONL record), the unit whose revision the index records."""

    source_id: str
    """The file's POSIX path relative to the corpus root, `<path>#<id>` for a JSONL record: stable across
    machines and checkouts."""
    text: str
    content_hash: str
    """sha256 (hex) of the document's content: the document's revision."""
    modified: float
    """The file's mtime or the record's `updated_at` (epoch seconds); informative only, `content_hash`
    decides whether a document changed."""
    title: str
    """The first `# ` heading, else the record's or HTML page's title, else the file stem."""
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    """`{"path": ...}` for files; a JSONL record's `metadata` with its `path`. Left out of the hash, so
    that documents stay hashable; a record's metadata is part of its `content_hash` anyway."""

    @classmethod
    def from_text(
        cls,
        source_id: str,
        text: str,
        modified: float = 0.0,
        *,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Document:
        """A document with its hash and title derived from `text` (also handy in tests)."""
        fallback = title or Path(source_id).stem
        return cls(
            source_id, text, content_hash(text), modified, document_title(text, fallback), metadata or {}
        )


@dataclass(frozen=True)
class Skipped:
    """A file or JSONL line that was left out of the corpus, and why."""

    path: str
    """POSIX path relative to the corpus root; `<path>:<line>` for a JSONL line."""
    reason: str


def content_hash(text: str) -> str:
    """sha256 hex digest of the UTF-8 encoded text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_title(text: str, fallback: str) -> str:
    """The text of the first level-one ATX heading (`# Title`), else `fallback`."""
    for line in text.splitlines():
        if line.startswith("# ") and line[2:].strip():
            return line[2:].strip().rstrip("#").strip()
    return fallback


def load_documents(root: Path) -> list[Document]:
    """The documents of `scan_documents(root)`; what was skipped is only logged."""
    documents, _ = scan_documents(root)
    return documents


def scan_documents(
    root: Path, *, max_bytes: int = MAX_DOCUMENT_BYTES
) -> tuple[list[Document], list[Skipped]]:
    """Every `*.md`, `*.markdown`, `*.txt`, `*.html`, `*.htm` file and `*.jsonl` record under `root`, sorted
    by source id, and what was skipped (each also logged as a warning).

    Hidden files and directories (a name starting with `.`, e.g. `.git`) are not read: they are tooling,
    not knowledge.
    """
    if not root.is_dir():
        raise CorpusNotFoundError(f"corpus directory {root} does not exist or is not a directory")
    documents: list[Document] = []
    skipped: list[Skipped] = []
    for path in sorted(_corpus_files(root)):
        for item in _read(path, path.relative_to(root).as_posix(), max_bytes):
            if isinstance(item, Document):
                documents.append(item)
            else:
                skipped.append(item)
    for item in skipped:
        logger.warning("skipped %s: %s", item.path, item.reason)
    return sorted(documents, key=lambda doc: doc.source_id), skipped


def _corpus_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        hidden = any(part.startswith(".") for part in relative.parts)
        if path.suffix.lower() in SUFFIXES and not hidden and path.is_file():
            yield path


def _read(path: Path, relative: str, max_bytes: int) -> Iterator[Document | Skipped]:
    suffix = path.suffix.lower()
    try:
        status = path.stat()
        if suffix in JSONL_SUFFIXES:
            # Checked record by record: an export of many records may well be larger than any document.
            yield from _jsonl_documents(path, relative, status.st_mtime, max_bytes)
            return
        if status.st_size > max_bytes:
            yield Skipped(relative, f"{status.st_size} bytes is over the {max_bytes}-byte limit")
            return
        text = _decode(path.read_bytes())
    except OSError as exc:
        yield Skipped(relative, f"cannot be read: {exc.strerror or exc}")
        return
    except UnicodeDecodeError as exc:
        yield Skipped(relative, f"is not UTF-8 text: {exc}")
        return
    modified = status.st_mtime
    if suffix in HTML_SUFFIXES:
        text, page_title = html_to_text(text)
        document = Document.from_text(relative, text, modified, title=page_title, metadata={"path": relative})
    else:
        document = Document.from_text(relative, text, modified, metadata={"path": relative})
    yield document if document.text.strip() else Skipped(relative, "has no text")


def _decode(data: bytes) -> str:
    # A byte-order mark would hide a leading `# Title`; CR and CRLF read like LF (universal newlines), so
    # that a Windows checkout hashes and chunks the same as a Unix one.
    text = data.decode("utf-8-sig")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---- JSONL records --------------------------------------------------------------------------------------


def _jsonl_documents(
    path: Path, relative: str, modified: float, max_bytes: int
) -> Iterator[Document | Skipped]:
    """One document per line, read line by line; a bad line is skipped on its own."""
    seen: set[str] = set()
    found = False
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            item = _line(raw, relative, number, modified, max_bytes)
            if item is None:
                continue
            found = True
            if isinstance(item, Document) and item.source_id in seen:
                item = Skipped(f"{relative}:{number}", f"duplicate record id {item.source_id!r}")
            elif isinstance(item, Document):
                seen.add(item.source_id)
            yield item
    if not found:
        yield Skipped(relative, "has no records")


def _line(
    raw: bytes, relative: str, number: int, modified: float, max_bytes: int
) -> Document | Skipped | None:
    """Line `number` of a JSONL file as a document, or why not; None for a blank line."""
    where = f"{relative}:{number}"
    if len(raw) > max_bytes:
        return Skipped(where, f"record is over the {max_bytes}-byte limit")
    try:
        # A byte-order mark can only start the file.
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        return Skipped(where, f"is not UTF-8 text: {exc}")
    if not line.strip():
        return None
    try:
        return _record(json.loads(line), relative, modified)
    except (ValueError, TypeError) as exc:
        return Skipped(where, str(exc))


def _record(record: object, relative: str, file_modified: float) -> Document:
    """One JSONL record as a document; `ValueError`/`TypeError` say what is wrong with it."""
    if not isinstance(record, dict):
        raise TypeError("record is not a JSON object")
    record_id, text = record.get("id"), record.get("text")
    if isinstance(record_id, bool) or not isinstance(record_id, str | int) or not str(record_id).strip():
        raise ValueError("record has no string or integer `id`")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"record {record_id!r} has no `text`")
    title = record.get("title") or None
    metadata = record.get("metadata") or {}
    if title is not None and not isinstance(title, str):
        raise TypeError(f"record {record_id!r}: `title` is not a string")
    if not isinstance(metadata, dict):
        raise TypeError(f"record {record_id!r}: `metadata` is not an object")
    source_id = f"{relative}#{record_id}"
    modified = _timestamp(record.get("updated_at"), file_modified)
    # The title and metadata are part of the revision: a new title changes every chunk's heading.
    revision = json.dumps([text, title, metadata], sort_keys=True, ensure_ascii=False)
    return Document(
        source_id,
        text,
        content_hash(revision),
        modified,
        document_title(text, title or str(record_id)),
        {"path": relative, **metadata},
    )


def _timestamp(value: object, default: float) -> float:
    """`updated_at` as epoch seconds: an ISO 8601 date or time (UTC unless it says otherwise), or a number."""
    if value is None:
        return default
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise TypeError("`updated_at` is not an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"`updated_at` {value!r} is not an ISO 8601 date") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


# ---- HTML -----------------------------------------------------------------------------------------------


def html_to_text(html: str) -> tuple[str, str | None]:
    """The visible text of an HTML page, with headings as Markdown `#` lines, and its `<title>`.

    Scripts, styles, templates and navigation are dropped; block elements become paragraphs, `<pre>` a
    fenced block.
    """
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    title = " ".join(parser.title.split()) or None
    return "\n\n".join(parser.blocks) + ("\n" if parser.blocks else ""), title


_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "nav"})
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "body", "dd", "details", "dialog", "div", "dl", "dt"),
        *("fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li", "main", "nav", "ol"),
        *("p", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"),
    }
)
_SPACES = re.compile(r"\s+")


class _HtmlText(HTMLParser):
    """Collects text blocks; inline markup is flattened into the block around it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.title = ""
        self._inline: list[str] = []
        self._skip = 0
        self._pre = 0
        self._heading = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "br":
            self._inline.append("\n")
        elif tag in _HEADINGS or tag == "pre" or tag in _BLOCK_TAGS:
            self._flush()
            self._heading = _HEADINGS.get(tag, 0)
            self._pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in _HEADINGS or tag == "pre" or tag in _BLOCK_TAGS:
            self._flush()
            self._pre = max(0, self._pre - (tag == "pre"))

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data
        else:
            self._inline.append(data if self._pre else _SPACES.sub(" ", data))

    def close(self) -> None:
        super().close()
        self._flush()

    def _flush(self) -> None:
        raw, self._inline = "".join(self._inline), []
        heading, self._heading = self._heading, 0
        if self._pre:
            if raw.strip():
                self.blocks.append(f"```\n{raw.strip(chr(10))}\n```")
            return
        lines = [line.strip() for line in raw.split("\n")]
        text = "\n".join(line for line in lines if line)
        if text:
            self.blocks.append(f"{'#' * heading} {' '.join(text.split())}" if heading else text)
