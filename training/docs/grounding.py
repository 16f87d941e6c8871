"""The grounding filter: a proposed question is kept only if its chunk answers it, checked lexically.

The teacher only proposes questions. The answer always comes from the chunk: the sentence that shares the
most (rare) words with the question, and in it the best key span the question does not already contain.
So a weak teacher can waste its questions, but it cannot put a wrong answer into the training data: its
bad questions are rejected, each with a reason, rather than repaired.
"""

from __future__ import annotations

import re

from training.docs.pairs import Pair, Passage, Rejected
from training.docs.spans import Span, answer_spans
from training.docs.text import (
    Vocabulary,
    contains_phrase,
    content_words,
    is_question,
    same_question,
    stem,
    words,
)

REASONS = {
    "unparseable": "the teacher's reply held no question",
    "not_a_question": "not a single question",
    "bad_length": f"shorter than {3} or longer than {40} words",
    "vague": "refers to 'the text' or 'this section' instead of naming its subject",
    "unknown_name": "names something the chunk does not mention",
    "off_topic": "most of its words are not in the chunk",
    "no_answer": "the sentence it matches holds no short answer (name, term, number)",
    "answer_in_question": "the question already contains the answer",
    "ambiguous": "matches two sentences with different answers equally well",
    "duplicate": "the same question as one already kept for this fact",
    "meaning_changed": "a paraphrase that matches another fact than the question it rewords",
    "leak": "a near-duplicate of an eval question",
    "reviewer": "rejected by a reviewer (review.jsonl)",
    "over_cap": "the fact already has its maximum number of examples",
}
"""Every rejection code, with what it means (the data card repeats them)."""
MIN_WORDS, MAX_WORDS = 3, 40
MIN_COVERAGE = 0.75
"""Share of a question's content words (corpus-common ones aside) that must occur in its chunk."""

_VAGUE = re.compile(
    r"\b(?:the|this|that|above|following|given) (?:text|passage|sentence|section|article|document|paragraph"
    r"|excerpt|author|context|statement)\b|\baccording to\b",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")


def ground(
    question: str, passage: Passage, vocab: Vocabulary, common: frozenset[str], origin: str = "teacher"
) -> Pair | Rejected:
    """The question as a grounded pair (answer and reply from `passage`), or why it was rejected."""
    problem = shape_problem(question, passage, common)
    if problem:
        return Rejected(question, problem, passage, origin)
    ranked = sorted(
        (
            (vocab.overlap(question, sentence, exclude=common), index)
            for index, sentence in enumerate(passage.sentences)
        ),
        key=lambda item: (-item[0], item[1]),
    )
    if not ranked or ranked[0][0] <= 0:
        return Rejected(question, "off_topic", passage, origin, "no sentence shares a word with it")
    # Only the best-matching sentence may answer: falling back to a weaker match would hand a question
    # about one sentence the answer held by another. Two sentences tied with different answers: ambiguous.
    best = [passage.sentences[index] for score, index in ranked if score == ranked[0][0]]
    answers = {sentence: _fresh_spans(question, sentence, common) for sentence in best}
    found = {(sentence, spans[0].text) for sentence, spans in answers.items() if spans}
    if len(found) == 1:
        sentence, answer = found.pop()
        return Pair(question, answer, sentence, sentence, passage, origin)
    if len(found) > 1:
        return Rejected(question, "ambiguous", passage, origin, "matches several sentences equally")
    has_spans = any(answer_spans(sentence, common) for sentence in best)
    reason = "answer_in_question" if has_spans else "no_answer"
    return Rejected(question, reason, passage, origin)


def shape_problem(question: str, passage: Passage, common: frozenset[str]) -> str | None:
    """The first problem with a question's form and vocabulary, before any answer is looked for."""
    if not is_question(question):
        return "not_a_question"
    if not MIN_WORDS <= len(words(question)) <= MAX_WORDS:
        return "bad_length"
    if _VAGUE.search(question):
        return "vague"
    known = set(words(f"{passage.document_title} {passage.chunk.title} {passage.chunk.text}"))
    if any(not set(words(name)) <= known for name in _names(question)):
        return "unknown_name"
    asked = content_words(question) - common
    if not asked:
        return "off_topic"
    chunk_words = content_words(f"{passage.document_title} {passage.chunk.title} {passage.chunk.text}")
    if len(asked & chunk_words) / len(asked) < MIN_COVERAGE:
        return "off_topic"
    return None


def check_paraphrase(
    paraphrase: str, original: Pair, vocab: Vocabulary, common: frozenset[str]
) -> Pair | Rejected:
    """A paraphrase of a kept question, kept if it grounds to the same fact and is not the same question."""
    result = ground(paraphrase, original.passage, vocab, common, origin="paraphrase")
    if isinstance(result, Rejected):
        return result
    if result.fact != original.fact:
        return Rejected(paraphrase, "meaning_changed", original.passage, "paraphrase", original.question)
    if same_question(paraphrase, original.question):
        return Rejected(paraphrase, "duplicate", original.passage, "paraphrase", original.question)
    return Pair(
        paraphrase, original.answer, original.reply, original.sentence, original.passage, "paraphrase"
    )


def _fresh_spans(question: str, sentence: str, common: frozenset[str]) -> list[Span]:
    """The sentence's answer spans that the question does not already hold."""
    return [span for span in answer_spans(sentence, common) if not asked(question, span.text, common)]


def asked(question: str, answer: str, common: frozenset[str] = frozenset()) -> bool:
    """Whether the question already holds the answer: as a phrase, all its content words, or one of its
    name words as written ("Marisol" gives away "Marisol Okafor-Lindqvist"; "form" does not give away
    "Form LX-47", nor the company's name any of its products)."""
    if contains_phrase(question, answer):
        return True
    answer_words = content_words(answer)
    if answer_words and answer_words <= content_words(question):
        return True
    question_tokens = set(_TOKEN.findall(question))
    return any(
        token in question_tokens and stem(token.lower()) not in common
        for token in _TOKEN.findall(answer)
        if token[0].isupper() or (any(c.isdigit() for c in token) and any(c.isalpha() for c in token))
    )


def _names(question: str) -> list[str]:
    """The capitalised words of a question after its first word (a name the chunk should mention)."""
    return [token for token in _TOKEN.findall(question)[1:] if token[0].isupper() and token != "I"]
