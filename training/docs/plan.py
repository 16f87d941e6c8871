"""`plan_dataset`: what a run would ask the teacher, and how much of it is cached (for `--dry-run`).

Question calls are known exactly. Rewording calls are known for the questions the cache already answers;
for the rest only an upper bound exists (each question call yields at most one question to reword).
Nothing is called and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import TeacherSettings
from retrieval.sources import Skipped
from training.docs.build import DocsOptions, eval_split, natural_questions, read_inputs
from training.docs.cache import CallCache
from training.docs.calls import Call, cached_replies
from training.docs.generate import paraphrase_calls, question_calls, read_questions


@dataclass(frozen=True)
class Plan:
    """The teacher calls a run would make."""

    documents: int
    chunks: int
    sentences_asked: int
    skipped: list[Skipped]
    question_calls: int
    question_calls_cached: int
    paraphrase_calls_known: int
    """Rewording calls for questions whose generating call is cached (so they are known now)."""
    paraphrase_calls_cached: int
    paraphrase_calls_bound: int
    """At most this many more rewording calls, for the question calls not cached yet."""
    max_calls: int

    @property
    def new_calls_at_least(self) -> int:
        """New teacher calls the run will make for certain."""
        return (
            self.question_calls
            - self.question_calls_cached
            + self.paraphrase_calls_known
            - self.paraphrase_calls_cached
        )

    @property
    def new_calls_at_most(self) -> int:
        """New teacher calls the run may make."""
        return self.new_calls_at_least + self.paraphrase_calls_bound


def plan_dataset(options: DocsOptions, teacher: str, settings: TeacherSettings) -> Plan:
    """The plan for `options` with the teacher identified as `teacher` (`Teacher.identity`)."""
    inputs = read_inputs(options)
    plan = question_calls(
        inputs.corpus.passages, inputs.vocab, settings, options.question_samples, options.targeted_spans
    )
    calls = [call for call, _, _ in plan]
    cached = _cached(options, calls, teacher)
    questions = read_questions(plan, cached, inputs.vocab)
    split = eval_split(inputs, questions, options)
    to_reword = [
        p for p in natural_questions(questions.pairs, inputs.rules) if p.fact not in split.eval_facts
    ]
    reword_calls = [call for call, _ in paraphrase_calls(to_reword, settings, options.paraphrase_samples)]
    unique_questions = set(calls)
    return Plan(
        documents=len(inputs.corpus.documents),
        chunks=len(inputs.corpus.passages),
        sentences_asked=len({call.subject.split("\n")[0] for call in calls}),
        skipped=inputs.corpus.skipped,
        question_calls=len(unique_questions),
        question_calls_cached=len(cached),
        paraphrase_calls_known=len(set(reword_calls)),
        paraphrase_calls_cached=len(_cached(options, reword_calls, teacher)),
        paraphrase_calls_bound=(len(unique_questions) - len(cached)) * options.paraphrase_samples,
        max_calls=settings.max_calls,
    )


def format_plan(plan: Plan) -> str:
    """The plan in a few lines."""
    fits = "within" if plan.new_calls_at_most <= plan.max_calls else "OVER"
    lines = [
        f"{plan.documents} documents, {plan.chunks} chunks, {plan.sentences_asked} sentences to ask about "
        f"({len(plan.skipped)} files skipped)",
        f"question calls: {plan.question_calls} ({plan.question_calls_cached} cached)",
        f"rewording calls: {plan.paraphrase_calls_known} known ({plan.paraphrase_calls_cached} cached) "
        f"+ at most {plan.paraphrase_calls_bound} more",
        f"new teacher calls: {plan.new_calls_at_least} to {plan.new_calls_at_most}, "
        f"{fits} teacher.max_calls = {plan.max_calls}",
    ]
    lines += [f"skipped {item.path}: {item.reason}" for item in plan.skipped]
    return "\n".join(lines)


def _cached(options: DocsOptions, calls: list[Call], teacher: str) -> dict[Call, str]:
    if not options.cache_file.is_file():
        return {}
    with CallCache(options.cache_file, read_only=True) as cache:
        return cached_replies(cache, calls, teacher)
