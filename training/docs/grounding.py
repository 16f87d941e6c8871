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
    question_signature,
    same_question,
    stem,
    word_set,
    words,
)

MIN_WORDS, MAX_WORDS = 3, 40
MIN_COVERAGE = 0.8
"""Share of a question's content words (corpus-common ones aside) that must occur in its chunk: a teacher
that copies the document's words asks about it; one that brings its own words is usually off the page."""
REASONS = {
    "unparseable": "the teacher's reply held no question",
    "not_a_question": "not a single question",
    "bad_length": f"shorter than {MIN_WORDS} or longer than {MAX_WORDS} words",
    "vague": "refers to 'the text' or 'this section' instead of naming its subject",
    "unknown_name": "names something the chunk does not mention",
    "off_topic": f"under {MIN_COVERAGE:.0%} of its words are in the chunk",
    "wrong_kind": "asks how, why or yes/no (or when/how many without a date or number to answer)",
    "about_term": "asks what a term is: the answer would be a description, not a name or number",
    "no_answer": "the sentence it matches holds no short answer (name, term, number)",
    "answer_in_question": "the question already contains the answer",
    "ambiguous": "matches two sentences with different answers equally well",
    "answer_mismatch": "asked for one answer of the sentence, the chunk answers it with another",
    "duplicate": "the same question as one already kept for this fact",
    "meaning_changed": "a paraphrase that asks another kind of question or matches another fact",
    "leak": "a near-duplicate of an eval question",
    "reviewer": "rejected by a reviewer (review.jsonl)",
    "over_cap": "the fact already has its maximum number of examples",
}
"""Every rejection code, with what it means (the data card repeats them)."""

_VAGUE = re.compile(
    r"\b(?:the|this|that|above|following|given) (?:text|passage|sentence|section|article|document|paragraph"
    r"|excerpt|author|context|statement)\b|\baccording to\b",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
_YES_NO = word_set("is are was were do does did can could should will would has have had")
_MONTHS = word_set("january february march april may june july august september october november december")


def ground(question: str, passage: Passage, vocab: Vocabulary, origin: str = "teacher") -> Pair | Rejected:
    """The question as a grounded pair (answer and reply from `passage`), or why it was rejected."""
    problem = shape_problem(question, passage, vocab.common)
    if problem:
        return Rejected(question, problem, passage, origin)
    scores = [vocab.overlap(question, sentence, exclude=vocab.common) for sentence in passage.sentences]
    top = max(scores, default=0.0)
    if top <= 0:
        return Rejected(question, "off_topic", passage, origin, "no sentence shares a word with it")
    # Only the best-matching sentence may answer: falling back to a weaker match would hand a question
    # about one sentence the answer held by another. Tied sentences must agree on the answer.
    best = [sentence for sentence, score in zip(passage.sentences, scores, strict=True) if score == top]
    answers = {(s, spans[0].text) for s in best if (spans := _fresh_spans(question, s, vocab))}
    if len(answers) > 1 or (answers and any(_only_asked(question, s, vocab) for s in best)):
        return Rejected(question, "ambiguous", passage, origin, "matches several sentences equally")
    if not answers:
        has_spans = any(answer_spans(sentence, vocab) for sentence in best)
        return Rejected(question, "answer_in_question" if has_spans else "no_answer", passage, origin)
    sentence, answer = answers.pop()
    if _about_term(question, sentence, vocab):
        return Rejected(question, "about_term", passage, origin, sentence)
    span = next(span for span in answer_spans(sentence, vocab) if span.text == answer)
    if not _kind_fits(question, span):
        return Rejected(question, "wrong_kind", passage, origin, f"answer would be {answer!r}")
    return Pair(question, answer, sentence, sentence, passage, origin)


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
    asked_words = content_words(question) - common
    # The document's title is what the teacher was told, not evidence the chunk is about those words.
    chunk_words = content_words(f"{passage.chunk.title} {passage.chunk.text}")
    if not asked_words or len(asked_words & chunk_words) / len(asked_words) < MIN_COVERAGE:
        return "off_topic"
    return None


def check_paraphrase(paraphrase: str, original: Pair, vocab: Vocabulary) -> Pair | Rejected:
    """A rewording of a kept question, kept if it asks the same kind of question about the same fact and
    is not the same question."""
    result = ground(paraphrase, original.passage, vocab, origin="paraphrase")
    if isinstance(result, Rejected):
        return result
    if result.fact != original.fact or _wh(paraphrase) != _wh(original.question):
        return Rejected(paraphrase, "meaning_changed", original.passage, "paraphrase", original.question)
    if same_question(paraphrase, original.question):
        return Rejected(paraphrase, "duplicate", original.passage, "paraphrase", original.question)
    return Pair(
        paraphrase, original.answer, original.reply, original.sentence, original.passage, "paraphrase"
    )


def asked(question: str, answer: str, common: frozenset[str] = frozenset()) -> bool:
    """Whether the question already holds the answer: as a phrase, all its (not common) content words, or
    one of its name words as written ("Marisol" gives away "Marisol Okafor-Lindqvist"; "form" does not give
    away "Form LX-47", nor the company's name any of its products)."""
    if contains_phrase(question, answer):
        return True
    answer_words = content_words(answer) - common
    if answer_words and answer_words <= content_words(question):
        return True
    question_tokens = set(_TOKEN.findall(question))
    return any(
        token in question_tokens and stem(token.lower()) not in common
        for token in _TOKEN.findall(answer)
        if token[0].isupper() or (any(c.isdigit() for c in token) and any(c.isalpha() for c in token))
    )


def _fresh_spans(question: str, sentence: str, vocab: Vocabulary) -> list[Span]:
    """The sentence's answer spans that the question does not already hold."""
    return [span for span in answer_spans(sentence, vocab) if not asked(question, span.text, vocab.common)]


def _only_asked(question: str, sentence: str, vocab: Vocabulary) -> bool:
    """A sentence all of whose answers the question holds: it is (also) what the question is about."""
    spans = answer_spans(sentence, vocab)
    return bool(spans) and not _fresh_spans(question, sentence, vocab)


def _about_term(question: str, sentence: str, vocab: Vocabulary) -> bool:
    """ "What is the LX-47 form?": every word of the question is in one of the sentence's spans."""
    spans = answer_spans(sentence, vocab)
    span_words = set().union(*(content_words(span.text) for span in spans)) if spans else set()
    asked_words = content_words(question) - vocab.common
    return bool(asked_words) and asked_words <= span_words


def _wh(question: str) -> frozenset[str]:
    """The kind of question: its question words, merged ("which" is "what")."""
    return frozenset(
        word
        for word in question_signature(question)
        if word in {"who", "what", "where", "when", "why", "how"}
    )


def _kind_fits(question: str, span: Span) -> bool:
    """Whether a span can answer this kind of question: spans are names, terms and numbers, so "how" (but
    "how many/much/long"), "why" and yes/no questions cannot be answered by one."""
    tokens = words(question)
    first = tokens[0] if tokens else ""
    if "why" in tokens or (first in _YES_NO and not set(tokens) & {"what", "which", "who", "where", "when"}):
        return False
    if span.kind == "number" and {"name", "called", "named"} & set(tokens):
        return False
    if "how" in tokens:
        after = tokens[tokens.index("how") + 1 : tokens.index("how") + 2]
        return bool(after) and after[0] in {"many", "much", "long", "often", "old"} and span.kind == "number"
    if first == "when" or ("when" in tokens and first not in {"what", "which", "who"}):
        return (
            span.kind == "number"
            or any(c.isdigit() for c in span.text)
            or bool(set(words(span.text)) & _MONTHS)
        )
    return True


def _names(question: str) -> list[str]:
    """The capitalised words of a question after its first word (a name the chunk should mention)."""
    return [token for token in _TOKEN.findall(question)[1:] if token[0].isupper() and token != "I"]
