"""Key spans: the short, checkable answers a sentence holds (names, defined terms, quotations, numbers).

A span is always a verbatim piece of its sentence, so any answer built from one is grounded in the document
by construction. Spans are found by rules, never by a model:

- `named`: what follows a naming cue ("is called a kettle ticket", "a red fox named Pipwick");
- `quoted`: text in quotation marks (a motto, a slogan);
- `name`: a run of capitalised words or codes ("Quillfern Lodge", "Form LX-47", "Driftglass 2");
- `number`: a number, with the noun it counts ("thirty days", "four").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from training.docs.text import STOPWORDS, Vocabulary, content_words, word_set

PRIORITY = {"named": 0, "quoted": 1, "name": 2, "number": 3}
"""Which span is the likelier answer when a sentence holds several: a defined term beats a passing name."""
MAX_SPAN_WORDS = 6

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
_CUE = re.compile(r"\b(?:called|named|known as|codenamed|nicknamed|titled)\s+(?:(?P<article>the|a|an)\s+)?")
_QUOTED = re.compile(r"\"([^\"]{2,100})\"|“([^”]{2,100})”")
_BOUNDARY = re.compile(r"[,.;:!?()\[\]\"“”]")
_CUE_STOP = word_set(
    "and or but in on at for by with that which who whom when where because to from as than if while after "
    "before so is are was were has have had"
)
_CONNECTORS = frozenset({"of", "the", "de", "&", "and"})
_OPENERS = word_set(
    "during under every everything nothing nobody each after before while since until although new"
)
"""Words that are capitalised only because they start a sentence (with `STOPWORDS`)."""
_UNITS = word_set(
    "second seconds minute minutes hour hours day days week weeks month months year years times degrees "
    "percent per cent metres meters kilometres miles litres kg grams people stores"
)
_NUMBER_WORDS = word_set(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "dozen"
)


@dataclass(frozen=True)
class Span:
    """A candidate answer: `sentence[start:end]`."""

    text: str
    start: int
    end: int
    kind: str
    """`named`, `quoted`, `name` or `number` (see the module docstring)."""
    article: str = ""
    """The article before a `named` span ("called *a* kettle ticket"), for questions that name the term."""


def key_spans(sentence: str, names: frozenset[str] = frozenset()) -> list[Span]:
    """The sentence's key spans, best first (by `PRIORITY`, then position); a span inside a better one
    (the `2` of "Driftglass 2") or overlapping one is dropped."""
    found = [*_named(sentence), *_quoted(sentence), *_names(sentence, names), *_numbers(sentence)]
    found.sort(key=lambda span: (PRIORITY[span.kind], span.start))
    kept: list[Span] = []
    for span in found:
        if not any(other.start < span.end and span.start < other.end for other in kept):
            kept.append(span)
    return kept


def answer_spans(sentence: str, vocab: Vocabulary | None = None) -> list[Span]:
    """`key_spans` (knowing the corpus's names) without those made only of its common words: the
    company's name is no answer."""
    if vocab is None:
        return key_spans(sentence)
    return [span for span in key_spans(sentence, vocab.names) if not content_words(span.text) <= vocab.common]


def _named(sentence: str) -> Iterable[Span]:
    for cue in _CUE.finditer(sentence):
        tokens: list[re.Match[str]] = []
        for token in _TOKEN.finditer(sentence, cue.end()):
            between = sentence[tokens[-1].end() if tokens else cue.end() : token.start()]
            if _BOUNDARY.search(between) or token[0].lower() in _CUE_STOP or len(tokens) == MAX_SPAN_WORDS:
                break
            tokens.append(token)
        if tokens:
            start, end = tokens[0].start(), tokens[-1].end()
            yield Span(sentence[start:end], start, end, "named", cue["article"] or "")


def _quoted(sentence: str) -> Iterable[Span]:
    for match in _QUOTED.finditer(sentence):
        group = 1 if match[1] is not None else 2
        text = match[group].rstrip(".,;:!? ")
        if text:
            start = match.start(group)
            yield Span(text, start, start + len(text), "quoted")


def _is_name_token(token: str) -> bool:
    return token[0].isupper() or any(ch.isdigit() for ch in token)


def _names(sentence: str, known: frozenset[str]) -> Iterable[Span]:
    tokens = list(_TOKEN.finditer(sentence))
    index = 0
    while index < len(tokens):
        if not _is_name_token(tokens[index][0]):
            index += 1
            continue
        end = index
        # Extend over name tokens, and over one connector between two of them ("Bank of England").
        while end + 1 < len(tokens):
            nxt = tokens[end + 1]
            gap = sentence[tokens[end].end() : nxt.start()]
            if _BOUNDARY.search(gap):
                break
            if _is_name_token(nxt[0]):
                end += 1
            elif (
                nxt[0] in _CONNECTORS
                and end + 2 < len(tokens)
                and _is_name_token(tokens[end + 2][0])
                and not _BOUNDARY.search(sentence[nxt.end() : tokens[end + 2].start()])
            ):
                end += 2
            else:
                break
        run = tokens[index : end + 1]
        initial = tokens[index].start() == 0 or bool(
            _BOUNDARY.search(sentence[: tokens[index].start()].strip()[-1:])
        )
        if initial:
            stripped = _without_opener(run)
            initial, run = len(stripped) == len(run), stripped
        # A lone capitalised word at the start of a sentence is usually just the start of the sentence,
        # unless the corpus writes it as a name elsewhere.
        if run and (len(run) > 1 or not initial or run[0][0] in known) and len(run) <= MAX_SPAN_WORDS:
            start, stop = run[0].start(), run[-1].end()
            yield Span(sentence[start:stop], start, stop, "name")
        index = end + 1


def _without_opener(run: list[re.Match[str]]) -> list[re.Match[str]]:
    """A sentence-initial run without the ordinary words that only a capital made look like a name."""
    while run and (
        run[0][0].lower() in STOPWORDS or run[0][0].lower() in _OPENERS or run[0][0] in _CONNECTORS
    ):
        run = run[1:]
    return run


def _numbers(sentence: str) -> Iterable[Span]:
    tokens = list(_TOKEN.finditer(sentence))
    for index, token in enumerate(tokens):
        text = token[0]
        if not (text.isdigit() or text.lower() in _NUMBER_WORDS):
            continue
        if text.lower() == "one" and not (index + 1 < len(tokens) and tokens[index + 1][0] in _UNITS):
            continue  # "one of them", "in one place": rarely a count anyone asks for
        if index > 0 and (tokens[index - 1][0].isdigit() or tokens[index - 1][0].lower() in _NUMBER_WORDS):
            continue  # inside a longer number ("twenty five")
        end = index
        while end + 1 < len(tokens) and tokens[end + 1][0].lower() in _NUMBER_WORDS:
            end += 1
        nxt = tokens[end + 1] if end + 1 < len(tokens) else None
        # A unit makes a clearer answer ("six weeks"); other nouns may be adjectives ("two sewing machines").
        counted = (
            nxt is not None
            and nxt[0] in _UNITS
            and not _BOUNDARY.search(sentence[tokens[end].end() : nxt.start()])
        )
        stop = nxt.end() if counted and nxt is not None else tokens[end].end()
        yield Span(sentence[token.start() : stop], token.start(), stop, "number")
