"""The teacher's two jobs, as calls to plan and replies to read: questions about sentences, and rewordings
of kept questions. Planning and reading are pure; `CallRunner` does the calling.

Only sentences with a key span are asked about: a question about any other sentence would have no short
answer to check, so the filters would reject it whatever the teacher wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.settings import TeacherSettings
from training.docs.calls import Call
from training.docs.grounding import check_paraphrase, ground
from training.docs.pairs import Pair, Passage, Rejected
from training.docs.prompts import (
    paraphrase_messages,
    parse_question,
    question_messages,
    section_label,
    targeted_messages,
)
from training.docs.spans import answer_spans
from training.docs.teacher import GenerationParams
from training.docs.text import Vocabulary

QuestionPlan = list[tuple[Call, Passage, str | None]]
"""Each question call, the passage its question is grounded in, and the answer it targets (if any)."""
ParaphrasePlan = list[tuple[Call, Pair]]


@dataclass
class Proposals:
    """What the teacher's replies amounted to."""

    pairs: list[Pair] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    replies: int = 0
    """Replies read (cached or new)."""
    unparseable: int = 0


def sample_params(sample: int, settings: TeacherSettings, *, greedy_first: bool) -> GenerationParams:
    """Call `sample`'s parameters: the first greedy (the teacher's best guess) if asked, the rest sampled."""
    greedy = greedy_first and sample == 0
    return GenerationParams(0.0 if greedy else settings.temperature, settings.max_tokens, seed=sample)


def question_calls(
    passages: Sequence[Passage], vocab: Vocabulary, settings: TeacherSettings, samples: int, targeted: int
) -> QuestionPlan:
    """For each sentence that holds a key span: `samples` open calls (the first greedy) and one greedy
    targeted call for each of its first `targeted` spans."""
    plan: QuestionPlan = []
    for passage in passages:
        section = section_label(passage.document_title, passage.chunk.title)
        for sentence in passage.sentences:
            spans = answer_spans(sentence, vocab)
            if not spans:
                continue
            messages = question_messages(section, sentence)
            for sample in range(samples):
                params = sample_params(sample, settings, greedy_first=True)
                plan.append(
                    (Call("question", passage.content_hash, sentence, messages, params), passage, None)
                )
            greedy = sample_params(0, settings, greedy_first=True)
            for span in spans[:targeted]:
                asking = targeted_messages(section, sentence, span.text)
                call = Call("targeted", passage.content_hash, f"{sentence}\n{span.text}", asking, greedy)
                plan.append((call, passage, span.text))
    return plan


def paraphrase_calls(pairs: Sequence[Pair], settings: TeacherSettings, samples: int) -> ParaphrasePlan:
    """`samples` rewording calls per distinct question (all sampled: a greedy rewording is usually a copy)."""
    plan: ParaphrasePlan = []
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        if (pair.passage.content_hash, pair.question) in seen:
            continue
        seen.add((pair.passage.content_hash, pair.question))
        messages = paraphrase_messages(pair.question)
        for sample in range(samples):
            params = sample_params(sample, settings, greedy_first=False)
            plan.append(
                (Call("paraphrase", pair.passage.content_hash, pair.question, messages, params), pair)
            )
    return plan


def read_questions(plan: QuestionPlan, replies: Mapping[Call, str], vocab: Vocabulary) -> Proposals:
    """Each answered call's question, grounded in its passage or rejected (unanswered calls are skipped)."""
    result = Proposals()
    for call, passage, answer in plan:
        if call not in replies:
            continue
        result.replies += 1
        question = parse_question(replies[call])
        if question is None:
            result.unparseable += 1
            result.rejected.append(Rejected(replies[call][:200], "unparseable", passage, "teacher"))
            continue
        grounded = ground(question, passage, vocab, origin="teacher")
        # A targeted question that the chunk answers with something else is not about its target.
        if isinstance(grounded, Pair) and answer is not None and grounded.answer != answer:
            grounded = Rejected(question, "answer_mismatch", passage, "teacher", f"asked for {answer!r}")
        if isinstance(grounded, Pair):
            result.pairs.append(grounded)
        else:
            result.rejected.append(grounded)
    return result


def read_paraphrases(plan: ParaphrasePlan, replies: Mapping[Call, str], vocab: Vocabulary) -> Proposals:
    """Each answered rewording, kept if it still asks for the same fact in other words."""
    result = Proposals()
    for call, original in plan:
        if call not in replies:
            continue
        result.replies += 1
        paraphrase = parse_question(replies[call])
        if paraphrase is None:
            result.unparseable += 1
            result.rejected.append(
                Rejected(replies[call][:200], "unparseable", original.passage, "paraphrase")
            )
            continue
        checked = check_paraphrase(paraphrase, original, vocab)
        if isinstance(checked, Pair):
            result.pairs.append(checked)
        else:
            result.rejected.append(checked)
    return result
