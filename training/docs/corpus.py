"""Read a documents folder with the retrieval package's sources and chunker, as the index would cut it.

Markdown, text, HTML and JSONL records are read; PDF, Word and other office files are not (they are
listed as skipped with that reason, so a person sees why a file contributed nothing). Unreadable files are
skipped and listed too; only a folder with no usable document at all is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.settings import ChunkingSettings
from retrieval.chunking import chunk_document
from retrieval.errors import CorpusNotFoundError
from retrieval.sources import MAX_DOCUMENT_BYTES, Document, Skipped, scan_documents
from training.docs.errors import NoUsableDocumentsError
from training.docs.pairs import Passage

UNREAD_FORMATS = {
    ".pdf": "PDF",
    ".docx": "Word",
    ".doc": "Word",
    ".odt": "OpenDocument",
    ".rtf": "RTF",
    ".pptx": "PowerPoint",
    ".xlsx": "Excel",
    ".epub": "EPUB",
}
"""Document formats people often have that are not read: convert them to Markdown or text first."""


@dataclass(frozen=True)
class DocsCorpus:
    """The usable documents of a folder, their passages (chunks with sentences), and what was skipped."""

    documents: list[Document]
    passages: list[Passage]
    skipped: list[Skipped]


def read_corpus(
    docs_dir: Path, chunking: ChunkingSettings, max_bytes: int = MAX_DOCUMENT_BYTES
) -> DocsCorpus:
    """The documents under `docs_dir`, chunked; `NoUsableDocumentsError` if none has any prose."""
    try:
        documents, skipped = scan_documents(docs_dir, max_bytes=max_bytes)
    except CorpusNotFoundError as exc:
        raise NoUsableDocumentsError(str(exc)) from None
    skipped = sorted([*skipped, *unread_files(docs_dir)], key=lambda item: item.path)
    passages = [
        passage
        for document in documents
        for chunk in chunk_document(document, chunking)
        if (passage := Passage.of(chunk, document.title)).sentences
    ]
    if not passages:
        listed = "; ".join(f"{item.path}: {item.reason}" for item in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        raise NoUsableDocumentsError(
            f"no usable document in {docs_dir}: it needs Markdown, text, HTML or JSONL files with prose"
            + (f"; skipped {listed}{more}" if skipped else "")
        )
    used = {passage.chunk.source_id for passage in passages}
    return DocsCorpus([doc for doc in documents if doc.source_id in used], passages, skipped)


def unread_files(docs_dir: Path) -> list[Skipped]:
    """Files in a format lorag does not read (PDF, Word, ...), as skipped entries that say so."""
    found = []
    for path in sorted(docs_dir.rglob("*")):
        relative = path.relative_to(docs_dir)
        kind = UNREAD_FORMATS.get(path.suffix.lower())
        if kind and path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found.append(
                Skipped(relative.as_posix(), f"{kind} files are not read: convert to Markdown or text")
            )
    return found
