"""Fixtures for the from-documents tests: a small documents folder and deterministic fake teachers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from core.settings import TeacherSettings
from training.docs import DocsOptions
from training.docs.errors import TeacherError
from training.docs.teacher import GenerationParams

DOCS = {
    "history.md": """# Harbour History

This page tells new members how the Harbour Rowing Club began.

## Founding

The Harbour Rowing Club was founded by Edda Marchetti-Holm in the village of Saltmere. The first boat the club
ever owned was a wooden skiff called the Grey Heron. Members still row the Grey Heron on the first Sunday of
every month.

## The clubhouse

The clubhouse of the Harbour Rowing Club is a building called Tidewrack House. Tidewrack House stands on the
old quay, and its boat hall holds twelve boats.
""",
    "rules.md": """# Club Rules

## Fees

Members of the Harbour Rowing Club pay their yearly fees with Form R-12. The treasurer collects Form R-12
every March.

## Safety

The safety drill of the Harbour Rowing Club is called the Fogbell Drill. Every new member practises the
Fogbell Drill before rowing alone.
""",
    "people.md": """# People

The head coach of the Harbour Rowing Club is Ansel Brightwood. He trains the racing crews on weekday mornings.

The club mascot is a grey seal named Bollard.
""",
}


def write_docs(root: Path, docs: dict[str, str] | None = None) -> Path:
    """The documents folder (the `DOCS` set by default)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (DOCS if docs is None else docs).items():
        (root / name).write_text(text, encoding="utf-8")
    return root


_SENTENCE = re.compile(r"^Sentence: (.*)$", re.MULTILINE)
_ANSWER = re.compile(r"^Answer: (.*)$", re.MULTILINE)


class FakeTeacher:
    """A teacher that writes answerable questions by rule (a targeted call gets the sentence with its
    answer replaced by "what"), some junk for open calls, and "Could you say ..." rewordings."""

    identity = "fake-teacher@test"

    def __init__(self) -> None:
        self.calls: list[tuple[str, GenerationParams]] = []

    def complete(self, messages: Sequence[dict[str, Any]], params: GenerationParams) -> str:
        request = messages[-1]["content"]
        self.calls.append((request, params))
        if request.startswith("Question: "):
            question = request.removeprefix("Question: ")
            return f"Could you say {question[0].lower()}{question[1:]}"
        sentence = _SENTENCE.search(request)[1]  # type: ignore[index]
        answer = _ANSWER.search(request)
        if answer is None:  # an open call: junk half the time, a vague question the other half
            return "What is the meaning of life?" if params.seed else "What does the text say about this?"
        return sentence.replace(answer[1], "what").rstrip(".") + "?"


class BrokenTeacher(FakeTeacher):
    """Fails every call after the first `ok` ones, like an endpoint that goes down mid-run."""

    def __init__(self, ok: int, error: type[BaseException] = TeacherError) -> None:
        super().__init__()
        self.ok = ok
        self.error = error

    def complete(self, messages: Sequence[dict[str, Any]], params: GenerationParams) -> str:
        if len(self.calls) >= self.ok:
            raise self.error("teacher down")
        return super().complete(messages, params)


class JunkTeacher(FakeTeacher):
    """Answers every call with something that is not a question."""

    identity = "junk-teacher@test"

    def complete(self, messages: Sequence[dict[str, Any]], params: GenerationParams) -> str:
        self.calls.append((messages[-1]["content"], params))
        return "<html><body>502 Bad Gateway</body></html>"


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "docs")


@pytest.fixture
def settings() -> TeacherSettings:
    return TeacherSettings(concurrency=2)


def options(docs: Path, out: Path, **overrides: Any) -> DocsOptions:
    """Options for tests: no progress bars; everything else as given."""
    return DocsOptions(docs, out, progress=False, **overrides)
