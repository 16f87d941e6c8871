"""Pure text helpers for document-derived data: sentences, words, and the lexical comparisons the filters use.

Everything here is deliberately lexical (no model): a grounding check that needs a model to trust a model's
output would not protect against a weak teacher.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*")
# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) before a capital, a digit or
# an opening quote. "Co. The" splits, "e.g. the" does not: lower case after the full stop keeps it whole.
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"'”’)\]]?)\s+(?=[\"“'(\[]?[A-Z0-9])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)(?=\S)(.+?)(?<=\S)\1")
_FENCE = re.compile(r"^\s*(```|~~~)")
COMMON_SHARE = 0.3


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text` (for word lists written as one string)."""
    return frozenset(text.split())


STOPWORDS = word_set(
    """a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can could did do does doing down during each either ever every few for from
    further had has have having he her here hers herself him himself his how i if in into is it its itself
    just let's me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up us very was we were what when where which while who whom whose why
    will with would you your yours yourself yourselves tell please know name named call called"""
)
"""Function words, plus naming verbs: "What is X called?" and "What is the name of X?" ask the same thing."""

WH_WORDS = {"who": "who", "whom": "who", "whose": "who", "what": "what", "which": "what", "where": "where",
            "when": "when", "why": "why", "how": "how"}  # fmt: skip
"""Question words, merged where they ask the same thing ("which town" is "what town")."""

_QUESTION_START = frozenset(
    {*WH_WORDS, "is", "are", "was", "were", "do", "does", "did", "can", "could", "should", "will", "would",
     "has", "have", "had", "in", "at", "on", "for", "to", "by", "from", "under", "during", "tell", "name"}
)  # fmt: skip


def words(text: str) -> list[str]:
    """Lower-cased word tokens (hyphenated words and codes such as `LX-47` stay whole)."""
    return [match.lower().replace("’", "'") for match in _WORD.findall(text)]


def normalize(text: str) -> str:
    """Lower-cased words joined by single spaces: punctuation and spacing no longer matter."""
    return " ".join(words(text))


def stem(word: str) -> str:
    """A crude suffix-stripping stem, enough to match "founded", "founder" and "founding" to "found"."""
    for suffix in ("'s", "ing", "ers", "er", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Stems of the words that carry meaning (stopwords and question words left out)."""
    return {stem(word) for word in words(text) if word not in STOPWORDS}


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` as whole words, ignoring case and punctuation."""
    needle = normalize(phrase)
    return bool(needle) and f" {needle} " in f" {normalize(text)} "


def clean_markdown(text: str) -> str:
    """Inline Markdown removed: links keep their text, emphasis and code markers go."""
    text = _LINK.sub(r"\1", text)
    for _ in range(2):  # nested emphasis (`**_x_**`)
        text = _EMPHASIS.sub(r"\2", text)
    return text


def sentences(text: str) -> list[str]:
    """The sentences of a chunk's text, each on one line, with inline Markdown removed.

    Paragraphs are split on blank lines, list items and table rows stand alone, and code blocks are left
    out (they are not prose a question can be answered from).
    """
    found: list[str] = []
    for block in _prose_blocks(text):
        flat = " ".join(clean_markdown(block).split())
        found.extend(part.strip() for part in _split_sentences(flat) if part.strip())
    return found


def _prose_blocks(text: str) -> Iterable[str]:
    in_fence = False
    paragraph: list[str] = []
    for line in [*text.splitlines(), ""]:
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence or line.lstrip().startswith("|"):
            continue
        if _LIST_ITEM.match(line) or not line.strip():
            if paragraph:
                yield " ".join(paragraph)
                paragraph = []
            if line.strip():
                yield _LIST_ITEM.sub("", line)
            continue
        paragraph.append(line.strip())


def _split_sentences(text: str) -> list[str]:
    parts = _SENTENCE_END.split(text)
    # split() returns [sentence, closing-quote, sentence, ...]: put each closing quote back on its sentence.
    merged = [parts[0]]
    for index in range(1, len(parts), 2):
        merged[-1] += parts[index]
        merged.append(parts[index + 1])
    return merged


def is_question(text: str) -> bool:
    """Whether `text` reads as one question: ends with `?` or starts like one, and is not several."""
    tokens = words(text)
    if not tokens or text.count("?") > 1:
        return False
    return text.rstrip().endswith("?") or tokens[0] in _QUESTION_START


def question_signature(text: str, common: frozenset[str] = frozenset()) -> frozenset[str]:
    """What a question asks, as a set: its (merged) question words and content stems, minus the words
    common to the whole corpus (the company's name says nothing about which fact is asked for)."""
    tokens = words(text)
    wh = {WH_WORDS[token] for token in tokens if token in WH_WORDS}
    return frozenset(wh | (content_words(text) - common))


def same_question(a: str, b: str) -> bool:
    """Surface duplicates (case, punctuation, a word or two): de-duplication among kept questions.

    Paraphrases that reword a question are *not* the same question here: they are what training wants.
    """
    first, second = normalize(a), normalize(b)
    return first == second or SequenceMatcher(None, first, second).ratio() >= 0.9


def similar_question(a: str, b: str, common: frozenset[str] = frozenset()) -> bool:
    """Questions that ask the same thing in other words: the leakage check between eval and train.

    Stricter than `same_question` on purpose (it catches paraphrases): a false alarm costs one training
    example, a miss lets a test question into training.
    """
    if same_question(a, b):
        return True
    first, second = question_signature(a, common), question_signature(b, common)
    if not first or not second:
        return False
    shared = len(first & second)
    if shared / len(first | second) >= 0.7:
        return True
    # One question is the other plus detail ("What is the mascot?" / "What is the mascot's name at Lumora?").
    return min(len(first), len(second)) >= 3 and shared == min(len(first), len(second))


@dataclass(frozen=True)
class Vocabulary:
    """What a corpus's sentences say about words: how rare each is (rare shared words say more about a
    match), which are too common to tell facts apart, and which are written as names."""

    document_frequency: dict[str, int]
    sentences: int
    common: frozenset[str] = frozenset()
    """Stems in more than `COMMON_SHARE` of the sentences (the company's name, say)."""
    names: frozenset[str] = frozenset()
    """Words written with a capital inside a sentence somewhere: so "Nimbral" at the start of one sentence
    is still a name, while "Every" is not."""

    @classmethod
    def build(cls, corpus_sentences: Sequence[str]) -> Vocabulary:
        """Count, for each content stem, how many sentences hold it; find the common words and the names."""
        counts: Counter[str] = Counter()
        names: set[str] = set()
        for sentence in corpus_sentences:
            counts.update(content_words(sentence))
            names.update(token for token in _WORD.findall(sentence)[1:] if token[0].isupper())
        total = len(corpus_sentences)
        # Too few sentences to judge what is common: nothing is.
        common = {w for w, n in counts.items() if n / total > COMMON_SHARE} if total >= 5 else set()
        return cls(dict(counts), total, frozenset(common), frozenset(names))

    def idf(self, word: str) -> float:
        """Smoothed inverse document frequency (an unseen word counts as rare)."""
        return math.log((1 + self.sentences) / (1 + self.document_frequency.get(word, 0))) + 1.0

    def overlap(self, question: str, sentence: str, exclude: Iterable[str] = ()) -> float:
        """The idf-weighted content words `question` shares with `sentence`, minus `exclude`'s words."""
        excluded = set(exclude)
        shared = (content_words(question) & content_words(sentence)) - excluded
        return sum(self.idf(word) for word in shared)
