"""The data card (`card.json`) and `pairs.jsonl`: what a person needs to judge the generated data.

The card records the teacher, every document and its hash, what was skipped, the teacher calls (planned,
cached, made), how many questions were proposed, kept and rejected (by reason, with a sample of each), the
eval items carried over, added and retired, and the reviewer marks. `pairs.jsonl` lists every proposal
with its fate and its pair id, which is what `review.jsonl` marks refer to.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.textfiles import read_json
from retrieval.sources import Document, Skipped
from training.docs.assemble import Assembly
from training.docs.calls import CallCounts
from training.docs.generate import Proposals
from training.docs.grounding import REASONS
from training.docs.pairs import Pair, Rejected
from training.docs.prompts import PROMPT_VERSIONS
from training.docs.split import EvalSplit
from training.raft import RaftStats

CARD_FORMAT = "lorag.docs-card/1"
SAMPLE_PER_REASON = 5


@dataclass
class RunResult:
    """Everything one run found, for the card and the report."""

    docs_dir: str
    teacher: str
    teacher_params: dict[str, Any]
    options: dict[str, Any]
    documents: list[Document]
    skipped: list[Skipped]
    chunks: int
    sentences: int
    sentences_asked: int
    calls: dict[str, CallCounts]
    questions: Proposals
    paraphrases: Proposals
    rule_pairs: int
    split: EvalSplit
    assembly: Assembly
    marks: dict[str, str]
    static_examples: int
    raft: RaftStats | None = None
    raft_examples: int = 0
    counterfactual_examples: int = 0
    """Reading examples whose source has the fact's answer changed (`training.docs.counterfactual`)."""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def train_examples(self) -> int:
        """Lines of train.jsonl."""
        return self.static_examples + self.raft_examples + self.counterfactual_examples


def build_card(result: RunResult) -> dict[str, Any]:
    """The card as a JSON-ready dict."""
    statuses = result.assembly.statuses
    proposed = {"teacher": result.questions.replies, "paraphrase": result.paraphrases.replies}
    in_train = Counter(status.pair.origin for status in statuses if status.status == "train")
    grounded = {"teacher": len(result.questions.pairs), "paraphrase": len(result.paraphrases.pairs)}
    rejected = Counter(r.reason for r in [*result.questions.rejected, *result.paraphrases.rejected])
    rejected.update(status.reason for status in statuses if status.status == "rejected")
    return {
        "format": CARD_FORMAT,
        "created_at": result.created_at,
        "docs_dir": result.docs_dir,
        "teacher": {"identity": result.teacher, "prompt_versions": PROMPT_VERSIONS, **result.teacher_params},
        "options": result.options,
        "documents": [
            {"source_id": d.source_id, "title": d.title, "content_hash": d.content_hash}
            for d in result.documents
        ],  # fmt: skip
        "skipped": [asdict(item) for item in result.skipped],
        "counts": {
            "documents": len(result.documents),
            "chunks": result.chunks,
            "sentences": result.sentences,
            "sentences_asked": result.sentences_asked,
            "teacher_calls": {label: asdict(counts) for label, counts in result.calls.items()},
            "proposed": proposed,
            "grounded": grounded,
            "teacher_yield": _ratio(in_train["teacher"] + in_train["paraphrase"], sum(proposed.values())),
            "rule_pairs": result.rule_pairs,
            "in_train_by_origin": dict(sorted(in_train.items())),
            "held_out": sum(status.status == "held_out" for status in statuses),
            "rejected": dict(sorted(rejected.items())),
            "eval_items": len(result.split.items),
            "eval_items_retired": len(result.split.retired),
            "train_examples": {
                "static": result.static_examples,
                "raft": result.raft_examples,
                "counterfactual": result.counterfactual_examples,
                "total": result.train_examples,
            },
        },
        "rejection_reasons": REASONS,
        "rejected_sample": _rejected_sample(result),
        "retired_eval": result.split.retired,
        "raft": asdict(result.raft) if result.raft else None,
        "review": _review_counts(result),
    }


def pair_records(result: RunResult) -> list[dict[str, Any]]:
    """`pairs.jsonl`: every grounded pair with its fate, then every proposal the filters rejected."""
    records = [
        {
            **_pair_fields(status.pair),
            "status": status.status,
            "reason": status.reason,
            "review": status.review,
        }
        for status in result.assembly.statuses
    ]
    for rejected in [*result.questions.rejected, *result.paraphrases.rejected]:
        records.append({**_rejected_fields(rejected), "status": "rejected", "reason": rejected.reason})
    return records


def format_report(result: RunResult, out_dir: str) -> str:
    """A few lines for the terminal: what was written and what the teacher's work amounted to."""
    card = build_card(result)
    counts = card["counts"]
    in_train = counts["in_train_by_origin"]
    calls = ", ".join(
        f"{label} {c['planned']} ({c['cached']} cached, {c['made']} made)"
        for label, c in counts["teacher_calls"].items()
    )
    rejected = ", ".join(f"{reason} {n}" for reason, n in counts["rejected"].items()) or "none"
    return "\n".join(
        [
            f"read {counts['documents']} documents, {counts['chunks']} chunks, "
            f"{counts['sentences']} sentences ({len(result.skipped)} files skipped)",
            f"teacher {result.teacher}: calls {calls}",
            f"teacher questions: {sum(counts['proposed'].values())} proposed, "
            f"{sum(counts['grounded'].values())} grounded, {in_train.get('teacher', 0)} + "
            f"{in_train.get('paraphrase', 0)} paraphrases in train "
            f"(yield {counts['teacher_yield']:.2f})",
            f"rejected: {rejected}",
            f"wrote {out_dir}: train.jsonl {counts['train_examples']['total']} examples "
            f"({counts['train_examples']['raft']} RAFT, "
            f"{counts['train_examples']['counterfactual']} counterfactual), "
            f"eval.jsonl {counts['eval_items']} items "
            f"({counts['eval_items_retired']} retired), pairs.jsonl, card.json",
        ]
    )


def _pair_fields(pair: Pair) -> dict[str, Any]:
    chunk = pair.passage.chunk
    return {
        "id": pair.id,
        "origin": pair.origin,
        "question": pair.question,
        "answer": pair.answer,
        "reply": pair.reply,
        "source_id": chunk.source_id,
        "chunk_id": chunk.chunk_id,
        "fact": pair.fact,
    }


def _rejected_fields(rejected: Rejected) -> dict[str, Any]:
    chunk = rejected.passage.chunk
    return {
        "id": None,
        "origin": rejected.origin,
        "question": rejected.question,
        "detail": rejected.detail,
        "source_id": chunk.source_id,
        "chunk_id": chunk.chunk_id,
    }


def _rejected_sample(result: RunResult) -> list[dict[str, Any]]:
    sample: list[dict[str, Any]] = []
    taken: Counter[str] = Counter()
    for rejected in [*result.questions.rejected, *result.paraphrases.rejected]:
        if taken[rejected.reason] < SAMPLE_PER_REASON:
            taken[rejected.reason] += 1
            sample.append({**_rejected_fields(rejected), "reason": rejected.reason})
    for status in result.assembly.statuses:
        if status.status == "rejected" and taken[status.reason] < SAMPLE_PER_REASON:
            taken[status.reason] += 1
            sample.append({**_pair_fields(status.pair), "reason": status.reason})
    return sample


def _review_counts(result: RunResult) -> dict[str, int]:
    known = {status.pair.id for status in result.assembly.statuses}
    marks = result.marks
    return {
        "accepted": sum(mark == "accept" and pair_id in known for pair_id, mark in marks.items()),
        "rejected": sum(mark == "reject" and pair_id in known for pair_id, mark in marks.items()),
        "stale": sum(pair_id not in known for pair_id in marks),
        "unreviewed_in_train": sum(
            status.status == "train" and status.pair.id not in marks for status in result.assembly.statuses
        ),
    }


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


RERUN_OPTIONS = (
    "question_samples",
    "targeted_spans",
    "paraphrase_samples",
    "eval_share",
    "max_examples_per_fact",
    "docs_indexed",
    "counterfactual_per_fact",
)
"""The options a re-run must repeat: with others the split (which facts are held out) or the cache keys
would change, and facts held out last quarter could reach the training data; and the number of reading
examples, so that next quarter's data has the same make-up."""


def recorded_options(card_path: Path) -> dict[str, Any]:
    """The options an earlier run in this folder recorded in its card (`RERUN_OPTIONS` only), or {} when
    there is no card yet; `raft` is True when that run wrote RAFT examples."""
    if not card_path.is_file():
        return {}
    card = read_json(card_path)
    options = {key: card["options"][key] for key in RERUN_OPTIONS if key in card.get("options", {})}
    return {**options, "raft": card.get("raft") is not None}
