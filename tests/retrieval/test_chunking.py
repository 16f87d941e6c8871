"""Golden tests for the chunker: headings, paragraph packing, long-paragraph windows and ids."""

from __future__ import annotations

import pytest

from core.settings import ChunkingSettings
from core.types import Chunk
from retrieval.chunking import chunk_document, chunk_id, chunk_int_id, chunker_config, embedding_text
from retrieval.sources import Document

SMALL = ChunkingSettings(max_tokens=16, overlap=4)


def words(start: int, stop: int) -> str:
    return " ".join(f"w{i}" for i in range(start, stop))


def layout(chunks: list[Chunk]) -> list[tuple[int, str, str]]:
    return [(c.position, c.title, c.text) for c in chunks]


def chunk(text: str, source_id: str = "doc.md", config: ChunkingSettings = SMALL) -> list[Chunk]:
    return chunk_document(Document.from_text(source_id, text), config)


def test_headings_split_and_title_preamble_folds_into_first_section() -> None:
    text = (
        "# Price list\n\nUpdated: 2026-11-20\n\n"
        "## Tents\n\nThe tent costs 249.\n\nIt has two doors.\n\n"
        "## Jackets\n\n### Kids\n\nThe kids' jacket costs 118.\n"
    )
    assert layout(chunk(text)) == [
        (0, "Tents", "Updated: 2026-11-20\n\nThe tent costs 249.\n\nIt has two doors."),
        (1, "Kids", "The kids' jacket costs 118."),
    ]


def test_title_alone_is_not_a_chunk() -> None:
    assert layout(chunk("# Title\n\n## Section\n\nBody text.\n")) == [(0, "Section", "Body text.")]


def test_preamble_with_real_text_is_its_own_chunk() -> None:
    text = "# Returns\n\nItems can be returned within 30 days.\n\n## Refunds\n\nRefunds take five days.\n"
    assert layout(chunk(text)) == [
        (0, "Returns", "Items can be returned within 30 days."),
        (1, "Refunds", "Refunds take five days."),
    ]


def test_metadata_only_document_is_kept() -> None:
    assert layout(chunk("# Notice\n\nUpdated: 2026-11-20\n")) == [(0, "Notice", "Updated: 2026-11-20")]


def test_text_without_headings_is_titled_by_file_stem() -> None:
    assert layout(chunk("Stores open at nine.\n", source_id="notes/hours.txt")) == [
        (0, "hours", "Stores open at nine.")
    ]


def test_paragraphs_are_packed_up_to_max_tokens() -> None:
    paragraphs = [words(6 * i, 6 * i + 6) for i in range(5)]
    texts = [c.text for c in chunk("\n\n".join(paragraphs))]
    assert texts == [
        f"{paragraphs[0]}\n\n{paragraphs[1]}",
        f"{paragraphs[2]}\n\n{paragraphs[3]}",
        paragraphs[4],
    ]


def test_long_paragraph_is_cut_into_overlapping_windows() -> None:
    text = f"Short one.\n\n{words(0, 40)}\n\nShort two."
    assert [c.text for c in chunk(text)] == [
        "Short one.",
        words(0, 16),
        words(12, 28),
        words(24, 40),
        "Short two.",
    ]


def test_window_that_reaches_the_end_is_the_last() -> None:
    assert [c.text for c in chunk(words(0, 28))] == [words(0, 16), words(12, 28)]


def test_code_fences_hide_headings_and_blank_lines() -> None:
    text = "## Setup\n\n```\n# not a heading\n\nstill code\n```\n"
    assert layout(chunk(text)) == [(0, "Setup", "```\n# not a heading\n\nstill code\n```")]


def test_chunks_carry_source_and_document_revision() -> None:
    doc = Document.from_text("a/b.md", "## One\n\nFirst.\n\n## Two\n\nSecond.\n")
    chunks = chunk_document(doc, SMALL)
    assert [c.position for c in chunks] == [0, 1]
    assert {c.source_id for c in chunks} == {"a/b.md"}
    assert all(c.metadata == {"content_hash": doc.content_hash} for c in chunks)


def test_ids_are_stable_across_runs() -> None:
    # A literal: an id that changes between runs or Python versions would orphan every stored chunk.
    [only] = chunk("Stable text.", source_id="stable.md")
    assert only.chunk_id == "606553f4c37a29dc"
    assert only.chunk_id == chunk_id("stable.md", "Stable text.", chunker_config(SMALL))


def test_same_text_in_two_documents_gets_two_ids() -> None:
    assert chunk("Same text.", "a.md")[0].chunk_id != chunk("Same text.", "b.md")[0].chunk_id


def test_chunker_config_is_part_of_the_id() -> None:
    other = ChunkingSettings(max_tokens=16, overlap=8)
    assert chunk("Same text.")[0].chunk_id != chunk("Same text.", config=other)[0].chunk_id


def test_repeated_text_in_one_document_is_one_chunk() -> None:
    text = "## A\n\nTo be announced.\n\n## B\n\nTo be announced.\n\n## C\n\nReal news.\n"
    assert layout(chunk(text)) == [(0, "A", "To be announced."), (1, "C", "Real news.")]


def test_overlap_must_be_smaller_than_the_window() -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk("text", config=ChunkingSettings(max_tokens=16, overlap=16))


def test_int_id_fits_int64() -> None:
    assert chunk_int_id("f" * 16) == 2**60 - 1 < 2**63
    assert chunk_int_id("0123456789abcdef") == 0x0123456789ABCDE


def test_embedding_text_leads_with_the_title() -> None:
    [titled] = chunk("## Refunds\n\nFive days.\n")
    assert embedding_text(titled) == "Refunds\n\nFive days."
    assert embedding_text(Chunk("id", "s", "Bare.")) == "Bare."
