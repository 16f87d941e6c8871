"""The vocabulary of document-derived data: sentences of chunks, facts, and question/answer pairs.

A *fact* is one answer in one sentence: (the sentence, the short answer span it holds), identified by a
hash of their normalised text. The hash, not a file name or a position, is what the eval split and the
review marks key on, so both survive documents being added, removed, moved or re-chunked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from core.types import Chunk
from training.docs.text import normalize, sentences

ORIGINS = (
    "teacher",
    "paraphrase",
    "rule:pattern",
    "rule:wh",
    "rule:cloze",
    "rule:term",
    "rule:heading",
    "rule:keywords",
)
"""Where a question came from: the teacher, a teacher paraphrase, or one of the teacher-free rules."""


def sha(text: str) -> str:
    """sha256 hex of UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_hash(chunk: Chunk) -> str:
    """The content hash of what a teacher sees of a chunk (heading and text), independent of its file path:
    a moved document costs no teacher calls."""
    return sha(f"{chunk.title}\n\n{chunk.text}")


def fact_key(sentence: str, answer: str) -> str:
    """The id of a fact: 16 hex chars of sha256 over the normalised sentence and answer."""
    return sha(f"{normalize(sentence)}\n{normalize(answer)}")[:16]


@dataclass(frozen=True)
class Passage:
    """A chunk cut into the sentences that questions are grounded in."""

    chunk: Chunk
    document_title: str
    sentences: tuple[str, ...]

    @classmethod
    def of(cls, chunk: Chunk, document_title: str) -> Passage:
        """The passage of a chunk (sentences in reading order)."""
        return cls(chunk, document_title, tuple(sentences(chunk.text)))

    @property
    def content_hash(self) -> str:
        """See `chunk_hash`."""
        return chunk_hash(self.chunk)


@dataclass(frozen=True)
class Pair:
    """A question, the short answer it has in the document, and the reply the adapter is trained to give."""

    question: str
    answer: str
    """A key span of `sentence` (what an eval checks the reply for); "" for questions with no one answer."""
    reply: str
    """The document's own words: the grounding sentence (or the section's opening, for heading questions)."""
    sentence: str
    """The sentence of the chunk that grounds the pair."""
    passage: Passage = field(repr=False, compare=False)
    origin: str
    """One of `ORIGINS`."""

    @property
    def fact(self) -> str:
        """The pair's fact id (`fact_key`)."""
        return fact_key(self.sentence, self.answer)

    @property
    def id(self) -> str:
        """A stable id for reviewers: 12 hex chars of sha256 over the normalised question and the fact."""
        return sha(f"{normalize(self.question)}\n{self.fact}")[:12]


@dataclass(frozen=True)
class Rejected:
    """A proposed question that a filter refused, and which filter."""

    question: str
    reason: str
    """A short code, e.g. `answer_in_question`, `off_topic`, `duplicate` (see `grounding.REASONS`)."""
    passage: Passage = field(repr=False, compare=False)
    origin: str
    detail: str = ""
