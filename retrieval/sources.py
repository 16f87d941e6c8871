"""Load the documents of a corpus directory: Markdown and plain-text files, read recursively."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import CorpusNotFoundError, RetrievalError

SUFFIXES = frozenset({".md", ".markdown", ".txt"})


@dataclass(frozen=True)
class Document:
    """One source file of the corpus, the unit whose revision the index records."""

    source_id: str
    """The file's POSIX path relative to the corpus root: stable across machines and checkouts."""
    text: str
    content_hash: str
    """sha256 (hex) of the UTF-8 text: the document's revision."""
    modified: float
    """The file's mtime; informative only, `content_hash` decides whether a document changed."""
    title: str
    """The first `# ` heading, else the file stem."""

    @classmethod
    def from_text(cls, source_id: str, text: str, modified: float = 0.0) -> Document:
        """A document with its hash and title derived from `text` (also handy in tests)."""
        stem = Path(source_id).stem
        return cls(source_id, text, content_hash(text), modified, document_title(text, stem))


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
    """Every `*.md`, `*.markdown` and `*.txt` file under `root`, sorted by source id.

    Hidden files and directories (a name starting with `.`, e.g. `.git`) are skipped: they are tooling,
    not knowledge.
    """
    if not root.is_dir():
        raise CorpusNotFoundError(f"corpus directory {root} does not exist or is not a directory")
    paths = [
        path
        for path in root.rglob("*")
        if path.suffix.lower() in SUFFIXES and path.is_file() and not _hidden(path.relative_to(root))
    ]
    documents = [_read(path, root) for path in paths]
    return sorted(documents, key=lambda doc: doc.source_id)


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _read(path: Path, root: Path) -> Document:
    # Universal newlines: a CRLF checkout hashes and chunks the same as an LF one.
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RetrievalError(f"{path} is not UTF-8 text: {exc}") from exc
    return Document.from_text(path.relative_to(root).as_posix(), text, path.stat().st_mtime)
