"""Cut documents into chunks: pure functions, from a `Document` and the chunking settings to `Chunk`s.

Markdown headings split first (each chunk records the nearest heading as its title), then blank lines
split paragraphs, which are packed into chunks of at most `max_tokens` words. A paragraph longer than that
is cut into windows that carry `overlap` words over, so a sentence cut at a window edge is still whole in
one of them. Only ATX headings (`## Heading`) are recognised, and never inside fenced code blocks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.settings import ChunkingSettings
from core.types import Chunk
from retrieval.sources import Document

CHUNKER_VERSION = 1
"""Bump when the algorithm changes: it is part of every chunk id, so old chunks stop matching new ones."""

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
# "Updated: 2026-11-20", "Owner: support team": dates and bylines that say nothing on their own.
_METADATA = re.compile(r"^[A-Z][A-Za-z ()/-]{0,30}:[ \t]+\S")
_METADATA_MAX_WORDS = 12


@dataclass
class _Section:
    title: str
    level: int
    """Heading level, 0 for text above the first heading."""
    paragraphs: list[str] = field(default_factory=list)


def chunk_document(doc: Document, config: ChunkingSettings) -> list[Chunk]:
    """The chunks of one document, in reading order, with consecutive positions."""
    if config.overlap >= config.max_tokens:
        raise ValueError(
            f"chunk overlap ({config.overlap}) must be smaller than max_tokens ({config.max_tokens})"
        )
    pieces = [
        (section.title, text)
        for section in _fold_preamble(_sections(doc.text, doc.title))
        for text in _pack(section.paragraphs, config.max_tokens, config.overlap)
    ]
    return _to_chunks(doc, pieces, chunker_config(config))


def chunker_config(config: ChunkingSettings) -> dict[str, Any]:
    """The chunker's identity as recorded in manifests and hashed into chunk ids."""
    return {"chunker": CHUNKER_VERSION, **config.model_dump()}


def chunk_id(source_id: str, text: str, config: Mapping[str, Any]) -> str:
    """First 16 hex chars of sha256 over (source id, text, canonical JSON of the chunker config).

    The source id is part of it so that the same paragraph in two documents stays two citable chunks.
    """
    payload = json.dumps([source_id, text, config], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def chunk_int_id(chunk_id: str) -> int:
    """The int64 id FAISS and SQLite store for a chunk: its first 15 hex chars (60 bits).

    15 hex digits are at most 2**60 - 1, so the value is always a positive int64; 60 bits keep collisions
    negligible for any corpus this index is meant for.
    """
    return int(chunk_id[:15], 16)


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its heading, then its text (a short section rarely repeats its topic)."""
    return f"{chunk.title}\n\n{chunk.text}" if chunk.title else chunk.text


def _sections(text: str, default_title: str) -> list[_Section]:
    """Split on headings, and each section's body on blank lines (both ignored inside code fences)."""
    sections = [_Section(default_title, 0)]
    lines: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading is None and (in_fence or line.strip()):
            lines.append(line.rstrip())
            continue
        _end_paragraph(sections[-1], lines)
        lines = []
        if heading is not None:
            sections.append(_Section(heading[2].strip(), len(heading[1])))
    _end_paragraph(sections[-1], lines)
    return [section for section in sections if section.paragraphs]


def _end_paragraph(section: _Section, lines: list[str]) -> None:
    if lines:
        section.paragraphs.append("\n".join(lines))


def _fold_preamble(sections: list[_Section]) -> list[_Section]:
    """Move a preamble that is only metadata (`Updated: ...`) into the first real section.

    The preamble is what sits above the first `##` heading: text before any heading and the `# Title`
    section. Alone it would be a chunk that matches every query about dates and answers none; folded
    into the next section it still dates that section's facts.
    """
    while len(sections) > 1 and sections[0].level <= 1 and all(map(_is_metadata, sections[0].paragraphs)):
        first, second = sections[0], sections[1]
        sections = [_Section(second.title, second.level, first.paragraphs + second.paragraphs), *sections[2:]]
    return sections


def _is_metadata(paragraph: str) -> bool:
    return all(
        _METADATA.match(line) and len(line.split()) <= _METADATA_MAX_WORDS for line in paragraph.splitlines()
    )


def _pack(paragraphs: Sequence[str], max_words: int, overlap: int) -> Iterator[str]:
    """Whole paragraphs packed up to `max_words`; longer paragraphs as overlapping windows."""
    packed: list[str] = []
    size = 0
    for paragraph in paragraphs:
        words = len(paragraph.split())
        if packed and (words > max_words or size + words > max_words):
            yield "\n\n".join(packed)
            packed, size = [], 0
        if words > max_words:
            yield from _windows(paragraph.split(), max_words, overlap)
        else:
            packed.append(paragraph)
            size += words
    if packed:
        yield "\n\n".join(packed)


def _windows(words: list[str], size: int, overlap: int) -> Iterator[str]:
    """Windows of `size` words, each starting `overlap` words before the previous one ended."""
    start = 0
    while True:
        yield " ".join(words[start : start + size])
        if start + size >= len(words):
            return
        start += size - overlap


def _to_chunks(doc: Document, pieces: Sequence[tuple[str, str]], config: Mapping[str, Any]) -> list[Chunk]:
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for title, text in pieces:
        cid = chunk_id(doc.source_id, text, config)
        # The same text twice in one document hashes to one id: keeping the first is enough to find it.
        if cid in seen:
            continue
        seen.add(cid)
        metadata = {"content_hash": doc.content_hash}
        chunks.append(Chunk(cid, doc.source_id, text, len(chunks), title, metadata))
    return chunks
