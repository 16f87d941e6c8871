"""Counterfactual reading examples: a fact's chunk with its answer changed, given as a retrieved source.

RAFT examples (`raft_data`) put a fact's own, true chunk in the prompt, so memory and source always agree
and nothing teaches the adapter to copy from the source when the two differ — which is what a `+rag` route
needs once the index holds facts the adapter never saw (prices, stock, dates that change). The hand-written
demo data teaches it with template passages filled with random values (`training.demo_data`); this is the
same idea for documents, with no template to write:

- a training fact whose answer is a `number` or a name (`name`, `named`, `quoted` spans) gets another
  value of the same kind: a number of the same shape (digits stay digits; number words may become digits,
  as prices and counts in evolving documents are), a code with its letters and digits redrawn
  ("Form LX-47" → "Form QD-18"), a month for a month, and for other names another name of the corpus;
- the value is replaced throughout the fact's chunk, which goes into the prompt as a source beside 0–2
  distractors from the evolving index (best first 60% of the time, as in `demo_data.context_examples`);
- the question is one of the fact's training questions and the reply the *altered* sentence, so the
  answer can only come from the source;
- every number in a chunk is also asked about (`rules.wh_question`) with its value altered, because
  evolving answers are mostly numbers and prose handbooks have few.

Eval facts never appear: questions come from the training pairs, and the extra number questions of an eval
fact are skipped. Every choice is seeded by the fact's hash, so the output is a pure function of the pairs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.types import Chunk
from training.demo_data import conversation
from training.docs.pairs import Pair, fact_key
from training.docs.raft_data import gold_chunk
from training.docs.rules import wh_question
from training.docs.spans import Span, answer_spans
from training.docs.text import Vocabulary
from training.raft import Search


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


QUESTION_ORIGINS = ("teacher", "paraphrase", "rule:pattern", "rule:wh")
"""Questions asked with an altered source: natural ones and wh-in-place, not blanks or keyword lists."""
NAME_KINDS = frozenset({"name", "named", "quoted"})
MONTHS = _split("January February March April May June July August September October November December")
_NUMBER_WORDS = _split(
    "two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty ninety"
)
"""Number words a count may become ("one" is left out: "one weeks")."""
_DIGITS = re.compile(r"\d")
_CODE_LETTERS = re.compile(r"\b[A-Z]{1,4}(?=[-\d])")
"""The letter part of a code ("LX" of "LX-47", "SM" of "SM0926")."""


@dataclass(frozen=True)
class CounterfactualSource:
    """How many reading examples to make, and where their distractors come from."""

    search: Search
    """The evolving index, searched with the question, for distractors."""
    max_distractors: int = 2
    p_first: float = 0.6
    """Share of examples whose altered chunk is the first source; the rest are shuffled."""
    seed: int = 0


@dataclass(frozen=True)
class Reading:
    """One counterfactual example before it becomes a conversation."""

    question: str
    reply: str
    """The altered sentence."""
    value: str
    """The new answer, verbatim in `reply` and in `chunk`."""
    original: str
    chunk: Chunk
    fact: str


def altered_value(span: Span, rng: random.Random, names: Sequence[str], avoid: str) -> str | None:
    """Another value of `span`'s kind that `avoid` (the chunk's text) does not contain; None if none."""
    for _ in range(20):
        value = _draw(span, rng, names, avoid)
        if value is None:
            return None
        if value.lower() != span.text.lower() and not _contains(avoid, value):
            return value
    return None


def readings(
    train: Sequence[Pair],
    eval_facts: frozenset[str],
    vocab: Vocabulary,
    draws_per_fact: int = 2,
    seed: int = 0,
    is_leak: Callable[[str], bool] = lambda question: False,
) -> list[Reading]:
    """The counterfactual examples of the training facts, then of every other number in their chunks."""
    names = _name_pool(train, vocab)
    by_fact: dict[str, list[Pair]] = {}
    for pair in train:
        if pair.origin in QUESTION_ORIGINS and pair.answer:
            by_fact.setdefault(pair.fact, []).append(pair)
    found: list[Reading] = []
    for fact, pairs in sorted(by_fact.items()):
        span = _span_of(pairs[0], vocab)
        if span is None:
            continue
        pairs.sort(key=lambda p: (QUESTION_ORIGINS.index(p.origin), p.id))
        for draw in range(draws_per_fact):
            rng = random.Random(f"{seed}:{fact}:{draw}")
            reading = _reading(pairs[draw % len(pairs)].question, pairs[0], span, rng, names)
            if reading is not None:
                found.append(reading)
    asked = {reading.fact for reading in found}
    passages = {pair.passage.content_hash: pair.passage for pair in train}
    for _, passage in sorted(passages.items()):
        for sentence in passage.sentences:
            for span in answer_spans(sentence, vocab):
                fact = fact_key(sentence, span.text)
                if not _is_number(span) or fact in asked or fact in eval_facts:
                    continue
                # A bare "40" is found as a name (a code-like token): ask "how many", not "what".
                question = wh_question(sentence, replace(span, kind="number"))
                if is_leak(question):
                    continue
                pair = Pair(question, span.text, sentence, sentence, passage, "rule:wh")
                for draw in range(draws_per_fact):
                    reading = _reading(question, pair, span, random.Random(f"{seed}:{fact}:{draw}"), names)
                    if reading is not None:
                        found.append(reading)
    return found


def counterfactual_records(
    readings_: Sequence[Reading], source: CounterfactualSource
) -> list[dict[str, Any]]:
    """The readings as chat examples with the altered chunk among distractors from the evolving index."""
    records = []
    searched: dict[str, list[Chunk]] = {}  # a fact's draws share their question: one search each
    for index, reading in enumerate(readings_):
        rng = random.Random(f"{source.seed}:{reading.fact}:{index}")
        if reading.question not in searched:
            hits = source.search(reading.question, source.max_distractors + 2)
            searched[reading.question] = [hit.chunk for hit in hits]
        pool = [chunk for chunk in searched[reading.question] if chunk.source_id != reading.chunk.source_id]
        distractors = rng.sample(pool, min(len(pool), rng.randint(0, source.max_distractors)))
        chunks = [reading.chunk, *distractors]
        if rng.random() >= source.p_first:
            rng.shuffle(chunks)
        records.append({"messages": conversation(reading.question, reading.reply, chunks)})
    return records


def _reading(
    question: str, pair: Pair, span: Span, rng: random.Random, names: Sequence[str]
) -> Reading | None:
    if _contains(question, span.text):
        return None
    gold = gold_chunk(pair.passage)
    value = altered_value(span, rng, names, f"{gold.title}\n{gold.text}\n{question}")
    if value is None:
        return None
    reply = _replace(pair.sentence, span.text, value)
    altered = replace(
        gold, text=_replace(gold.text, span.text, value), title=_replace(gold.title, span.text, value)
    )
    if value not in reply or reply not in altered.text:
        return None
    return Reading(question, reply, value, span.text, altered, pair.fact)


def _span_of(pair: Pair, vocab: Vocabulary) -> Span | None:
    """The answer's span in its sentence, if it is of a kind that can be altered."""
    for span in answer_spans(pair.sentence, vocab):
        if span.text == pair.answer and (span.kind == "number" or span.kind in NAME_KINDS):
            return span
    return None


def _name_pool(train: Sequence[Pair], vocab: Vocabulary) -> list[str]:
    """Every name-like span in the training facts' chunks, in a stable order: the values names swap to."""
    sentences = {sentence for pair in train for sentence in pair.passage.sentences}
    pool = {
        span.text
        for sentence in sentences
        for span in answer_spans(sentence, vocab)
        if span.kind in NAME_KINDS and not _DIGITS.search(span.text) and span.text not in MONTHS
    }
    return sorted(pool)


def _is_number(span: Span) -> bool:
    return span.kind == "number" or span.text.isdigit()


def _draw(span: Span, rng: random.Random, names: Sequence[str], avoid: str) -> str | None:
    if span.kind == "number":
        return _number(span.text, rng)
    if _DIGITS.search(span.text):
        return _code(span.text, rng)
    if span.text in MONTHS:
        return rng.choice(MONTHS)
    words = len(span.text.split())
    fresh = [name for name in names if not _overlaps(name, span.text) and not _contains(avoid, name)]
    same = [name for name in fresh if len(name.split()) == words]
    others = same or fresh
    return rng.choice(others) if others else None


def _number(text: str, rng: random.Random) -> str | None:
    head, _, unit = text.partition(" ")
    if head.isdigit():
        low = 10 ** (len(head) - 1) if len(head) > 1 else 2
        value = str(rng.randrange(low, 10 ** len(head)))
    elif head.lower() in ("one", "dozen", "hundred", "thousand"):
        return None  # "a dozen times", "one day": another value would not read as English
    else:
        value = rng.choice(_NUMBER_WORDS) if rng.random() < 0.5 else str(rng.randrange(2, 100))
        if head[0].isupper():
            value = value[0].upper() + value[1:]
    return f"{value} {unit}".strip()


def _code(text: str, rng: random.Random) -> str:
    """The digits redrawn, and the letters of a code part ("LX-47"), so the value cannot be remembered."""
    digits = _DIGITS.sub(lambda _: str(rng.randrange(10)), text)
    return _CODE_LETTERS.sub(lambda match: "".join(chr(rng.randrange(65, 91)) for _ in match[0]), digits)


def _overlaps(a: str, b: str) -> bool:
    return a.lower() in b.lower() or b.lower() in a.lower()


def _contains(text: str, value: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.IGNORECASE) is not None


def _replace(text: str, old: str, new: str) -> str:
    return re.sub(rf"(?<!\w){re.escape(old)}(?!\w)", lambda _: new, text)
