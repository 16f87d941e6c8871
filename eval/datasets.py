"""Evaluation datasets: lorag's JSONL format, and loaders for SQuAD-style JSON, HotpotQA and PubMedQA.

lorag's own format is one JSON object per line, `{id, question, answers, kind, gold_sources}` (plus the
optional fields of `Question`). The public formats are converted to the same `Question`s; the ones that ship
their own context paragraphs also return those paragraphs as `Passage`s to index, so that `gold_sources`
name passages that the index will hold:

- SQuAD JSON: answers are the distinct `answers[].text`; one passage per paragraph, id `<article title>#<n>`
  (n counts from 0 within the article), titled by the article; gold_sources is the question's paragraph.
- HotpotQA JSONL: answers is `[answer]`; one passage per context page, id and title the page title, text its
  sentences joined; gold_sources are the supporting-fact titles.
- PubMedQA JSON: answers is `[final_decision]` (yes/no/maybe); one passage per PMID, id the PMID, title
  `PubMed <PMID>`, text the labelled abstract sections; gold_sources is the PMID.

Passages are pooled across all questions (HotpotQA's distractors included), so retrieval has to find the
gold paragraphs among everyone's. Unanswerable SQuAD 2.0 questions are left out: every metric here needs an
answer. PubMedQA's `LONG_ANSWER` (the abstract's conclusion) is not an acceptable short answer: a reply
would never contain it verbatim, and token F1 against it would mostly measure length. It is kept as
`Question.reference`, and it is not in the passage, so the abstract does not hand over its own conclusion.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

from core.textfiles import lines, read_json
from training.raft import RaftItem, read_raft_jsonl

logger = logging.getLogger(__name__)

DEMO_DATASET = Path(__file__).parent / "datasets" / "demo.jsonl"

Format = Literal["auto", "lorag", "squad", "hotpotqa", "pubmedqa"]
FORMATS: tuple[Format, ...] = ("lorag", "squad", "hotpotqa", "pubmedqa")


@dataclass(frozen=True)
class Question:
    """One evaluation item."""

    id: str
    question: str
    answers: list[str]
    """Acceptable short answers; a response is right if it contains one of them."""
    kind: str = "static"
    """`static` (adapter knowledge) or `evolving` (index knowledge); free text, reports group by it."""
    gold_sources: list[str] = field(default_factory=list)
    """Source ids that hold the answer, for retrieval metrics."""
    split: str | None = None
    """A named subset (e.g. `calibration` or `held_out`), so that thresholds are not tuned on test items."""
    reference: str | None = None
    """A long-form reference answer (PubMedQA's `LONG_ANSWER`); informative, not an acceptable answer."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """What the source dataset says about the item (HotpotQA `type` and `level`, PubMedQA `year`), and any
    field of a lorag JSONL row that is not one of these (kept, with a warning that names it)."""


@dataclass(frozen=True)
class Passage:
    """A document that a dataset ships with its questions, to be indexed for retrieval."""

    id: str
    """The id that `Question.gold_sources` uses."""
    text: str
    title: str

    def to_record(self) -> dict[str, str]:
        """The passage as a record of a JSONL corpus (`{id, title, text}`, what `retrieval.sources` reads)."""
        return {"id": self.id, "title": self.title, "text": self.text}


@dataclass(frozen=True)
class Dataset:
    """Questions, and the passages to index for them (empty when the dataset brings none)."""

    questions: list[Question]
    documents: list[Passage] = field(default_factory=list)


def load_questions(path: Path = DEMO_DATASET) -> list[Question]:
    """Read a dataset in lorag's JSONL format; errors name the line and the field.

    Fields that `Question` does not have are kept in `metadata`, with one warning naming them (and a
    near-miss of a known name, such as `gold_source`, named as such: it is probably a typo).
    """
    questions: list[Question] = []
    seen: set[str] = set()
    unknown: dict[str, int] = {}
    for number, record in _jsonl(path):
        question = parse_question(record, f"{path}:{number}")
        extra = set(record) - QUESTION_FIELDS
        for name in extra:
            unknown.setdefault(name, number)
        if question.id in seen:
            raise ValueError(f"{path}:{number}: duplicate id {question.id!r}")
        seen.add(question.id)
        questions.append(question)
    if unknown:
        logger.warning("%s", unknown_fields_warning(path, unknown))
    return questions


QUESTION_FIELDS = frozenset(f.name for f in fields(Question))
_REQUIRED = ("id", "question", "answers")


def parse_question(record: Mapping[str, Any], where: str) -> Question:
    """One lorag JSONL row as a `Question`: required fields present, each field of its type; unknown
    fields go into `metadata`. Errors start with `where` (file:line) and name the field."""
    for name in _REQUIRED:
        if name not in record:
            raise ValueError(f"{where}: missing field {name!r}{_did_you_mean(name, record)}")
    answers = record["answers"]
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise ValueError(f"{where}: field 'answers' must be a list of non-empty strings, got {answers!r}")
    gold = record.get("gold_sources", [])
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        raise ValueError(f"{where}: field 'gold_sources' must be a list of source ids, got {gold!r}")
    for name in ("question", "kind"):
        if name in record and not (isinstance(record[name], str) and record[name].strip()):
            raise ValueError(f"{where}: field {name!r} must be a non-empty string")
    for name in ("split", "reference"):
        if record.get(name) is not None and not isinstance(record[name], str):
            raise ValueError(f"{where}: field {name!r} must be a string")
    metadata = record.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: field 'metadata' must be an object")
    extra = {key: value for key, value in record.items() if key not in QUESTION_FIELDS}
    known = {key: value for key, value in record.items() if key in QUESTION_FIELDS}
    known["id"] = str(known["id"])
    return Question(**{**known, "metadata": {**metadata, **extra}})


def unknown_fields_warning(path: Path, unknown: Mapping[str, int]) -> str:
    """One line naming the fields `path` has that `Question` does not (kept in `metadata`)."""
    described = []
    for name, line in sorted(unknown.items(), key=lambda item: item[1]):
        close = get_close_matches(name, QUESTION_FIELDS, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        described.append(f"{name!r} (first on line {line}){hint}")
    return f"{path}: unknown field(s) kept in metadata: {', '.join(described)}"


def _did_you_mean(name: str, record: Mapping[str, Any]) -> str:
    close = get_close_matches(name, [str(key) for key in record], n=1, cutoff=0.8)
    return f" (found {close[0]!r}: a typo?)" if close else ""


def load_dataset(path: Path, format: Format = "auto", *, kind: str = "evolving") -> Dataset:
    """Load a dataset in any of `FORMATS`; `auto` tells them apart by the file's content.

    `kind` is given to the questions of the public formats, which are answered from their passages (index
    knowledge); lorag's JSONL says its own.
    """
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"unknown dataset format {format!r}; expected auto or one of {FORMATS}")
    path = Path(path)
    chosen = detect_format(path) if format == "auto" else format
    if chosen == "lorag":
        return Dataset(load_questions(path))
    if chosen == "hotpotqa":
        return hotpotqa_dataset((record for _, record in _jsonl(path)), kind=kind)
    data = read_json(path)
    return squad_dataset(data, kind=kind) if chosen == "squad" else pubmedqa_dataset(data, kind=kind)


def detect_format(path: Path) -> Format:
    """`lorag` or `hotpotqa` for JSON lines, `squad` or `pubmedqa` for a JSON document, by their keys."""
    first = next((line for _, line in lines(path) if line.strip()), "")
    try:
        record = json.loads(first)
    except ValueError:
        record = None  # A JSON document spread over several lines.
    if isinstance(record, dict) and "question" in record:
        return "hotpotqa" if "supporting_facts" in record else "lorag"
    data = read_json(path) if record is None else record
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return "squad"
    if (
        isinstance(data, dict)
        and data
        and all(isinstance(v, dict) and "QUESTION" in v for v in data.values())
    ):
        return "pubmedqa"
    raise ValueError(f"{path}: not a dataset in any of the formats {FORMATS}")


def squad_dataset(data: Mapping[str, Any], *, kind: str = "evolving") -> Dataset:
    """SQuAD v1.1/v2.0 JSON: one passage per paragraph; unanswerable questions are left out."""
    questions: list[Question] = []
    passages: list[Passage] = []
    for article in data["data"]:
        title = str(article.get("title") or "untitled")
        for number, paragraph in enumerate(article["paragraphs"]):
            passage = Passage(f"{title}#{number}", paragraph["context"], title)
            passages.append(passage)
            for qa in paragraph["qas"]:
                # dict.fromkeys keeps the first occurrence of each answer, in order.
                answers = list(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a["text"].strip()))
                if qa.get("is_impossible") or not answers:
                    continue
                questions.append(Question(str(qa["id"]), qa["question"], answers, kind, [passage.id]))
    return Dataset(questions, passages)


def hotpotqa_dataset(records: Iterable[Mapping[str, Any]], *, kind: str = "evolving") -> Dataset:
    """HotpotQA (distractor setting) records: one passage per context title, pooled across questions."""
    questions: list[Question] = []
    passages: dict[str, Passage] = {}
    for record in records:
        for title, sentences in zip(record["context"]["title"], record["context"]["sentences"], strict=True):
            # The sentences carry their own leading spaces, so joining with "" restores the paragraph.
            passage = Passage(title, "".join(sentences).strip(), title)
            # The same page can come with different excerpts; keep the longest, which holds the others.
            if title not in passages or len(passage.text) > len(passages[title].text):
                passages[title] = passage
        gold = list(dict.fromkeys(record["supporting_facts"]["title"]))
        metadata = {key: str(record[key]) for key in ("type", "level") if key in record}
        questions.append(
            Question(str(record["id"]), record["question"], [record["answer"]], kind, gold, metadata=metadata)
        )
    return Dataset(questions, list(passages.values()))


def pubmedqa_dataset(data: Mapping[str, Mapping[str, Any]], *, kind: str = "evolving") -> Dataset:
    """PubMedQA JSON (PMID → item): the answer is `final_decision`, the passage is the labelled abstract."""
    questions: list[Question] = []
    passages: list[Passage] = []
    for pmid, item in data.items():
        labels = item.get("LABELS") or [None] * len(item["CONTEXTS"])
        text = "\n\n".join(
            f"{label.title()}: {context}" if label else context
            for label, context in zip(labels, item["CONTEXTS"], strict=True)
        )
        passages.append(Passage(str(pmid), text, f"PubMed {pmid}"))
        metadata = {"year": str(item["YEAR"])} if "YEAR" in item else {}
        questions.append(
            Question(
                str(pmid),
                item["QUESTION"],
                [item["final_decision"]],
                kind,
                [str(pmid)],
                reference=item.get("LONG_ANSWER"),
                metadata=metadata,
            )
        )
    return Dataset(questions, passages)


def _jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; errors name the line."""
    for number, line in lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: invalid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: not a JSON object")
        yield number, record


def raft_items(path: Path) -> list[RaftItem]:
    """RAFT training items from `{question, answer, gold_sources}` JSONL, or from any dataset `load_dataset`
    reads (lorag eval JSONL, SQuAD, HotpotQA, PubMedQA: the first acceptable answer is the training answer;
    questions without an answer or gold sources are left out)."""
    first = _first_record(path)
    if isinstance(first, dict) and "answer" in first and "gold_sources" in first:
        return read_raft_jsonl(path)
    return [
        RaftItem(q.question, q.answers[0], tuple(q.gold_sources))
        for q in load_dataset(path).questions
        if q.answers and q.gold_sources
    ]


def _first_record(path: Path) -> Any:
    first = next((line for _, line in lines(path) if line.strip()), "")
    try:
        return json.loads(first)
    except ValueError:
        return None  # a JSON document over several lines: one of the eval formats
