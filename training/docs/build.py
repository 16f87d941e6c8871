"""`build_dataset`: a folder of documents → `train.jsonl`, `eval.jsonl`, `pairs.jsonl` and `card.json`.

Read top to bottom: read and chunk the documents → teacher-free pairs from rules → the teacher's questions
about each sentence, grounded in their chunks → the fact-level eval split → the teacher's rewordings of the
training questions → review marks, hold-out, de-duplication, leakage check, cap → chat examples (plus
RAFT examples if an evolving index is given) → every file staged, then renamed into place.

`plan_dataset` runs the same first steps against the cache alone, for `--dry-run`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import ChunkingSettings, TeacherSettings
from retrieval.sources import MAX_DOCUMENT_BYTES
from training.demo_data import conversation
from training.docs.assemble import assemble, leaks
from training.docs.cache import CallCache
from training.docs.calls import CallRunner
from training.docs.card import RunResult, build_card, pair_records
from training.docs.corpus import DocsCorpus, read_corpus
from training.docs.counterfactual import CounterfactualSource, counterfactual_records, readings
from training.docs.errors import CallCapError, DocsDataError, TeacherOutputError
from training.docs.generate import (
    Proposals,
    paraphrase_calls,
    question_calls,
    read_paraphrases,
    read_questions,
)
from training.docs.outputs import CACHE_FILE, CARD_FILE, EVAL_FILE, PAIRS_FILE, TRAIN_FILE, StagedFiles, jsonl
from training.docs.pairs import Pair
from training.docs.raft_data import RaftSource, raft_records
from training.docs.review import REVIEW_FILE, read_marks
from training.docs.rules import keyword_query, rule_pairs
from training.docs.split import EvalSplit, choose_eval, read_eval_file
from training.docs.teacher import Teacher
from training.docs.text import Vocabulary


@dataclass(frozen=True)
class DocsOptions:
    """What to read, where to write, and how much to generate."""

    docs_dir: Path
    """The documents: Markdown, text, HTML and JSONL records (PDF and Word files are listed, not read)."""
    out_dir: Path
    """Where train.jsonl, eval.jsonl, pairs.jsonl, card.json and the teacher cache go; review.jsonl is read
    from here."""
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    """Cut documents as the index does (`settings.chunking`)."""
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    question_samples: int = 2
    """Open question calls per sentence: the first greedy, the rest sampled."""
    targeted_spans: int = 2
    """Targeted question calls per sentence: one for each of its first key spans ("a question whose answer
    is X"), which small teachers answer far better than open requests."""
    paraphrase_samples: int = 2
    """Rewording calls per training question (teacher and pattern questions); 0 for none."""
    eval_share: float = 0.2
    """Share of facts held out for eval.jsonl, by the hash of each fact."""
    max_examples_per_fact: int = 12
    """So that a sentence the teacher likes does not crowd out the others."""
    counterfactual_per_fact: int = 2
    """With RAFT examples: counterfactual reading examples per fact (`training.docs.counterfactual`), each
    with another altered value; 0 for none."""
    docs_indexed: bool = False
    """The documents are also in the evolving index: eval items get their source as `gold_sources`."""
    cache_path: Path | None = None
    """The teacher cache (SQLite); default `out_dir/teacher-cache.sqlite`."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        if self.question_samples < 0 or self.targeted_spans < 0 or self.paraphrase_samples < 0:
            raise ValueError("question_samples, targeted_spans and paraphrase_samples must not be negative")
        if not 0.0 <= self.eval_share < 1.0:
            raise ValueError(f"eval_share must be in [0, 1), not {self.eval_share}")
        if self.counterfactual_per_fact < 0:
            raise ValueError("counterfactual_per_fact must not be negative")
        if self.max_examples_per_fact < 1:
            raise ValueError("max_examples_per_fact must be at least 1")

    @property
    def cache_file(self) -> Path:
        """Where the teacher cache is."""
        return self.cache_path or self.out_dir / CACHE_FILE

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, for the card."""
        return {
            "question_samples": self.question_samples,
            "targeted_spans": self.targeted_spans,
            "paraphrase_samples": self.paraphrase_samples,
            "eval_share": self.eval_share,
            "max_examples_per_fact": self.max_examples_per_fact,
            "counterfactual_per_fact": self.counterfactual_per_fact,
            "docs_indexed": self.docs_indexed,
            "chunking": self.chunking.model_dump(),
        }


@dataclass(frozen=True)
class Inputs:
    """What a run starts from: the corpus, its vocabulary, rule pairs, review marks and the last eval set."""

    corpus: DocsCorpus
    vocab: Vocabulary
    rules: list[Pair]
    marks: dict[str, str]
    previous_eval: list[dict[str, Any]]

    @property
    def common(self) -> frozenset[str]:
        """The corpus's common words (see `Vocabulary.common`)."""
        return self.vocab.common

    @property
    def live_chunks(self) -> set[str]:
        """Content hashes of the chunks that exist now."""
        return {passage.content_hash for passage in self.corpus.passages}


def read_inputs(options: DocsOptions) -> Inputs:
    """Read the documents, the review marks and the previous eval file; build the teacher-free pairs."""
    corpus = read_corpus(options.docs_dir, options.chunking, options.max_document_bytes)
    vocab = Vocabulary.build([sentence for passage in corpus.passages for sentence in passage.sentences])
    rules = [pair for passage in corpus.passages for pair in rule_pairs(passage, vocab)]
    marks = read_marks(options.out_dir / REVIEW_FILE)
    return Inputs(corpus, vocab, rules, marks, read_eval_file(options.out_dir / EVAL_FILE))


def build_dataset(
    options: DocsOptions, teacher: Teacher, settings: TeacherSettings, raft: RaftSource | None = None
) -> RunResult:
    """Generate the dataset into `options.out_dir`; earlier output stays as it was if anything fails."""
    inputs = read_inputs(options)
    with CallCache(options.cache_file) as cache:
        runner = CallRunner(cache, teacher, settings.max_calls, settings.concurrency, options.progress)
        plan = question_calls(
            inputs.corpus.passages, inputs.vocab, settings, options.question_samples, options.targeted_spans
        )
        _check_cap([call for call, _, _ in plan], runner, settings.max_calls)
        replies = runner.run([call for call, _, _ in plan], "questions")
        questions = read_questions(plan, replies, inputs.vocab)
        _check_not_junk(questions, teacher.identity)
        split = eval_split(inputs, questions, options)
        to_reword = [
            p for p in natural_questions(questions.pairs, inputs.rules) if p.fact not in split.eval_facts
        ]
        reword_plan = paraphrase_calls(to_reword, settings, options.paraphrase_samples)
        reworded = runner.run([call for call, _ in reword_plan], "paraphrases")
        paraphrases = read_paraphrases(reword_plan, reworded, inputs.vocab)
    candidates = [*questions.pairs, *paraphrases.pairs, *inputs.rules]
    candidates += keyword_pairs([*questions.pairs, *paraphrases.pairs, *_patterns(inputs.rules)])
    assembly = assemble(candidates, split, inputs.marks, inputs.common, options.max_examples_per_fact)
    _check_no_leaks([p.question for p in assembly.train], [i["question"] for i in split.items], inputs.common)
    result = RunResult(
        docs_dir=str(options.docs_dir),
        teacher=teacher.identity,
        teacher_params={"temperature": settings.temperature, "max_tokens": settings.max_tokens},
        options=options.to_dict(),
        documents=inputs.corpus.documents,
        skipped=inputs.corpus.skipped,
        chunks=len(inputs.corpus.passages),
        sentences=sum(len(passage.sentences) for passage in inputs.corpus.passages),
        sentences_asked=len({call.subject.split("\n")[0] for call, _, _ in plan}),
        calls=runner.counts,
        questions=questions,
        paraphrases=paraphrases,
        rule_pairs=len(inputs.rules),
        split=split,
        assembly=assembly,
        marks=inputs.marks,
        static_examples=len(assembly.train),
    )
    _write(options, inputs, result, raft)
    return result


def keyword_pairs(pairs: list[Pair]) -> list[Pair]:
    """A keyword-query variant of each natural question (teacher-free)."""
    variants = []
    for pair in pairs:
        query = keyword_query(pair.question)
        if query:
            variants.append(
                Pair(query, pair.answer, pair.reply, pair.sentence, pair.passage, "rule:keywords")
            )
    return variants


def _patterns(rules: list[Pair]) -> list[Pair]:
    return [pair for pair in rules if pair.origin == "rule:pattern"]


def natural_questions(teacher_pairs: list[Pair], rules: list[Pair]) -> list[Pair]:
    """Questions worth rewording: the teacher's grounded ones and the pattern rules' natural ones."""
    return [*teacher_pairs, *_patterns(rules)]


def eval_split(inputs: Inputs, questions: Proposals, options: DocsOptions) -> EvalSplit:
    rejected_ids = {pair_id for pair_id, mark in inputs.marks.items() if mark == "reject"}
    return choose_eval(
        [*questions.pairs, *_patterns(inputs.rules)],
        inputs.previous_eval,
        inputs.live_chunks,
        rejected_ids,
        share=options.eval_share,
        indexed=options.docs_indexed,
    )


def _check_cap(calls: list[Any], runner: CallRunner, max_calls: int) -> None:
    """Refuse before the first call when the questions alone need more new calls than the cap allows."""
    needed = len(set(calls)) - len(runner.cached(calls))
    if needed > max_calls:
        raise CallCapError(
            f"this run needs {needed} new teacher calls for questions alone and teacher.max_calls is "
            f"{max_calls}: raise it (see the plan with --dry-run); nothing was called"
        )


def _check_not_junk(questions: Proposals, teacher: str) -> None:
    """A teacher none of whose replies even looks like a question is misconfigured, not weak."""
    shapeless = {"unparseable", "not_a_question", "bad_length"}
    if questions.replies and not questions.pairs and all(r.reason in shapeless for r in questions.rejected):
        example = next((r.question for r in questions.rejected if r.question), "")
        raise TeacherOutputError(
            f"none of the {questions.replies} replies of teacher {teacher} was a question "
            f"(e.g. {example[:80]!r}): check teacher.url and teacher.model"
        )


def _check_no_leaks(train: list[str], eval_questions: list[str], common: frozenset[str]) -> None:
    found = leaks(train, eval_questions, common)
    if found:  # assemble() already drops these: reaching here is a bug, and must not ship data
        raise DocsDataError(
            f"internal error: {len(found)} training questions leak eval questions: {found[:3]}"
        )


def _write(options: DocsOptions, inputs: Inputs, result: RunResult, raft: RaftSource | None) -> None:
    records = [{"messages": conversation(pair.question, pair.reply)} for pair in result.assembly.train]
    if raft is not None:
        raft_lines, result.raft = raft_records(
            result.assembly.train, inputs.corpus.passages, raft, options.out_dir
        )
        result.raft_examples = len(raft_lines)
        records += raft_lines
        if options.counterfactual_per_fact:
            eval_questions = [item["question"] for item in result.split.items]
            found = readings(
                result.assembly.train,
                result.split.eval_facts,
                inputs.vocab,
                options.counterfactual_per_fact,
                raft.seed,
                is_leak=lambda question: bool(leaks([question], eval_questions, inputs.common)),
            )
            reading_lines = counterfactual_records(found, CounterfactualSource(raft.search, seed=raft.seed))
            result.counterfactual_examples = len(reading_lines)
            records += reading_lines
    staged = StagedFiles(options.out_dir)
    try:
        staged.stage(TRAIN_FILE, jsonl(records))
        staged.stage(EVAL_FILE, jsonl(result.split.items))
        staged.stage(PAIRS_FILE, jsonl(pair_records(result)))
        staged.stage(CARD_FILE, json.dumps(build_card(result), indent=2, ensure_ascii=False) + "\n")
        staged.commit()
    finally:
        staged.discard()
