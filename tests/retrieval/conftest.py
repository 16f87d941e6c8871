"""Fixtures for the retrieval tests: a deterministic fake embedder and a small corpus on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.sources import Document, load_documents
from tests.retrieval.fakes import HashingEmbedder

CORPUS = {
    "pricing.md": (
        "# Price list\n\nUpdated: 2026-11-20\n\n"
        "## Tent price\n\nThe Driftglass tent costs 249 dollars.\n\n"
        "## Jacket price\n\nThe Hollowpeak jacket costs 189 dollars.\n"
    ),
    "policies/returns.md": (
        "# Returns\n\nItems can be returned within 30 days with a receipt.\n\n"
        "## Refunds\n\nRefunds reach the original card within five working days.\n"
    ),
    "notes.txt": "Stores open at nine in the morning.\n",
}


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def make_embedder() -> type[HashingEmbedder]:
    """The fake's class, for tests that need one with another name or dimension."""
    return HashingEmbedder


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    for name, text in CORPUS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def documents(corpus_dir: Path) -> list[Document]:
    return load_documents(corpus_dir)
