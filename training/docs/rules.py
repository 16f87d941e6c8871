"""Teacher-free questions: rules turn a document's sentences into questions whose reply is the sentence.

They make sure a weak teacher is not the ceiling: every sentence with a key span yields some examples
whatever the teacher does. Each rule writes a different kind of question, so the adapter meets each fact
in several phrasings:

- `rule:pattern`: natural questions from sentence shapes ("X is called Y" → "What is X called?",
  "X was founded by Y" → "Who founded X?", "The head of X is Y" → "Who is the head of X?");
- `rule:wh`: the answer replaced by a question word where it stands ("… is called what?");
- `rule:cloze`: the sentence with its answer blanked out, to be completed;
- `rule:term`: the defined term asked about ("What is a kettle ticket?"), the reverse direction;
- `rule:heading`: what a section says, answered with the section's opening;
- `rule:keywords`: a question cut down to its keywords, as people type into search boxes.

All are pure functions of the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from training.docs.pairs import Pair, Passage
from training.docs.spans import Span, answer_spans
from training.docs.text import STOPWORDS, Vocabulary, word_set, words

MAX_SPANS_PER_SENTENCE = 3
HEADING_REPLY_WORDS = 60
PERSON_NOUNS = word_set(
    "founder founders officer director manager managers president chief head leader owner ceo chair chairman "
    "chairwoman chairperson designer engineer editor captain lead coach trainer treasurer secretary mayor "
    "principal author artist instructor supervisor inspector mentor partner"
)
"""Head nouns of subjects answered by a person: "The Chief Design Officer of X is …" asks *who*."""
_PRONOUN_SUBJECTS = word_set("it this that these those he she they we you i there here")
_LOWER_FIRST = word_set("the a an our its their every each")

_PRE = r"(?P<pre>(?:At|In|For|Within|Across) [^,]{2,40}, )?"
_SUBJECT = r"(?P<subj>[A-Za-z][^,;:]{2,100}?)"  # lower case after an "At X, " prefix
_BE = r"(?P<be>is|are|was|were)"
_CALLED = re.compile(
    _PRE + _SUBJECT + r" " + _BE + r"(?P<adv> (?:originally|also|now|usually|still|internally|officially))?"
    r" (?:called|named|known as|codenamed) (?P<obj>.+)$"
)
_PASSIVE_BY = re.compile(_PRE + _SUBJECT + r" " + _BE + r" (?P<verb>[a-z]+ed) by (?P<obj>.+)$")
_PASSIVE_IN = re.compile(_PRE + _SUBJECT + r" " + _BE + r" (?P<verb>[a-z]+ed) (?:in|at) (?P<obj>.+)$")
_COPULA = re.compile(_PRE + r"(?P<subj>(?:The|A|An|Our) [^,;:]{2,100}?) " + _BE + r" (?P<obj>.+)$")


def rule_pairs(passage: Passage, vocab: Vocabulary) -> list[Pair]:
    """Every teacher-free pair of a passage, in reading order (duplicates are dropped later)."""
    pairs: list[Pair] = []
    for sentence in passage.sentences:
        spans = answer_spans(sentence, vocab)[:MAX_SPANS_PER_SENTENCE]
        for question, span in pattern_questions(sentence, vocab):
            pairs.append(Pair(question, span.text, sentence, sentence, passage, "rule:pattern"))
        for span in spans:
            pairs.append(Pair(wh_question(sentence, span), span.text, sentence, sentence, passage, "rule:wh"))
            pairs.append(Pair(cloze(sentence, span), span.text, sentence, sentence, passage, "rule:cloze"))
            if span.kind in ("named", "quoted"):
                pairs.append(Pair(term_question(span), span.text, sentence, sentence, passage, "rule:term"))
    heading = heading_pair(passage)
    return [*pairs, *([heading] if heading else [])]


def pattern_questions(sentence: str, vocab: Vocabulary | None = None) -> list[tuple[str, Span]]:
    """Natural questions that the sentence's shape asks, each with its answer span (at most one per rule)."""
    text = sentence.rstrip(" .!")
    found: list[tuple[str, Span]] = []
    for pattern, ask in ((_CALLED, _ask_called), (_PASSIVE_BY, _ask_by), (_PASSIVE_IN, _ask_where)):
        match = pattern.match(text)
        if match and _usable_subject(match["subj"]):
            span = _span_in(sentence, match.start("obj"), vocab)
            if span is not None:
                found.append((ask(match), span))
    match = _COPULA.match(text)
    if match and not found and _usable_subject(match["subj"]):
        span = _span_in(sentence, match.start("obj"), vocab)
        if span is not None:
            found.append((_ask_copula(match), span))
    return found


def wh_question(sentence: str, span: Span) -> str:
    """The sentence up to the end of the answer's clause, with the answer replaced by a question word."""
    before = sentence[: span.start]
    after = re.split(r"[,;:.!?]", sentence[span.end :], maxsplit=1)[0]
    wh = _wh_word(span)
    before = re.sub(r"\b(?:the|a|an)\s+$", "", before)
    if re.search(r"\bby\s+$", before):
        wh = "whom"
    if not before.strip():
        return _capitalise(f"{wh} {after.strip()}".strip()) + "?"
    return f"{before}{wh}{after}".rstrip() + "?"


def cloze(sentence: str, span: Span) -> str:
    """A fill-in-the-blank prompt: the sentence with the answer replaced by a blank."""
    return f"Fill in the blank: {sentence[: span.start]}____{sentence[span.end :]}"


def term_question(span: Span) -> str:
    """ "What is <term>?" for a defined term, with the article the document uses for it."""
    if span.kind == "quoted":
        return f'What does "{span.text}" stand for?'
    article = f"{span.article} " if span.article else ""
    return f"What is {article}{span.text}?"


def heading_pair(passage: Passage) -> Pair | None:
    """'What does <document> say about <section>?', answered with the section's first sentences."""
    heading, title = passage.chunk.title.strip(), passage.document_title.strip()
    if not heading or not passage.sentences or heading.lower() == title.lower():
        return None
    reply: list[str] = []
    for sentence in passage.sentences[:2]:
        if reply and len(" ".join([*reply, sentence]).split()) > HEADING_REPLY_WORDS:
            break
        reply.append(sentence)
    first = words(heading)[0] if words(heading) else ""
    topic = heading[0].lower() + heading[1:] if first in STOPWORDS or first == "our" else heading
    question = f"What does {title} say about {topic}?"
    return Pair(question, "", " ".join(reply), passage.sentences[0], passage, "rule:heading")


def keyword_query(question: str) -> str | None:
    """The question's keywords, lower case, as a search-box query ("lumora annual staff gathering?");
    None when fewer than two keywords are left."""
    kept = [word for word in words(question) if word not in STOPWORDS and word not in ("fill", "blank")]
    return " ".join(kept) + "?" if len(kept) >= 2 else None


def _span_in(sentence: str, start: int, vocab: Vocabulary | None) -> Span | None:
    """The best answer span starting at or after `start` (the object of the sentence's verb)."""
    return next((span for span in answer_spans(sentence, vocab) if span.start >= start), None)


def _usable_subject(subject: str) -> bool:
    tokens = words(subject)
    return bool(tokens) and tokens[0] not in _PRONOUN_SUBJECTS and len(tokens) <= 16


def _subject(subject: str) -> str:
    """The subject as it reads inside a question: "The mascot of X" → "the mascot of X"."""
    first = subject.split(" ", 1)[0]
    return subject[0].lower() + subject[1:] if first.lower() in _LOWER_FIRST else subject


def _prefix(match: re.Match[str]) -> str:
    return match["pre"] or ""


def _ask_called(match: re.Match[str]) -> str:
    adverb = match["adv"] or ""
    return _capitalise(f"{_prefix(match)}what {match['be']} {_subject(match['subj'])}{adverb} called?")


def _ask_by(match: re.Match[str]) -> str:
    return _capitalise(f"{_prefix(match)}who {match['verb']} {_subject(match['subj'])}?")


def _ask_where(match: re.Match[str]) -> str:
    return _capitalise(f"{_prefix(match)}where {match['be']} {_subject(match['subj'])} {match['verb']}?")


def _ask_copula(match: re.Match[str]) -> str:
    head = words(match["subj"].split(" of ")[0])
    wh = "who" if head and head[-1] in PERSON_NOUNS else "what"
    return _capitalise(f"{_prefix(match)}{wh} {match['be']} {_subject(match['subj'])}?")


def _wh_word(span: Span) -> str:
    if span.kind == "number":
        unit = span.text.split()[1:] or []
        return "how many " + " ".join(unit) if unit else "how many"
    return "what"


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


def unique(items: Iterable[Pair]) -> list[Pair]:
    """Pairs without repeats of the same question for the same fact, first kept."""
    seen: set[str] = set()
    kept = []
    for pair in items:
        if pair.id not in seen:
            seen.add(pair.id)
            kept.append(pair)
    return kept
