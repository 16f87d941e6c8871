"""What the teacher is asked, and how its replies are read: pure functions.

Each call asks for one thing: a question a sentence answers (open, or *targeted* at one of its key
spans, which small models do much better), or a rewording of a question,
with a clear instruction and three worked examples from an unrelated made-up domain. A 135M model follows
the examples more than the instruction; a larger one follows both and simply writes better questions.
The reply format is one line of plain text: nothing to repair, and a reply that is not a question is
rejected by the filters, not fixed.

`PROMPT_VERSIONS` (one per kind of call) are part of every cache key: change a kind's version whenever
its prompt or examples change, and only its calls are asked again.
"""

from __future__ import annotations

import re

from core.prompting import Message

PROMPT_VERSIONS = {"question": "docs-qa/1", "targeted": "docs-qa-targeted/1", "paraphrase": "docs-qa/1"}

QUESTION_INSTRUCTION = (
    "You write quiz questions for the staff of an organisation. You are given one sentence from its "
    "documents and the section it comes from. Write one question that the sentence answers. The question "
    "must make sense on its own: name the organisation, product or thing it asks about, and never mention "
    "'the text', 'the sentence' or 'this section'. It must not contain its answer. Reply with the question "
    "only, on one line."
)
QUESTION_EXAMPLES = (
    (
        "Section: Visitor guide - Getting there",
        "The river ferry at Oakridge leaves every hour from the north pier.",
        "How often does the river ferry at Oakridge leave?",
    ),
    (
        "Section: About us - Our kitchen",
        "The head chef of the Blue Heron restaurant is Ana Whitcombe.",
        "Who is the head chef of the Blue Heron restaurant?",
    ),
    (
        "Section: Membership - Fees",
        "Members of the Harbour Rowing Club pay their yearly fees with a form called R-12.",
        "Which form do members of the Harbour Rowing Club use to pay their yearly fees?",
    ),
)
TARGETED_INSTRUCTION = (
    "You write quiz questions for the staff of an organisation. You are given one sentence from its "
    "documents, the section it comes from, and an answer that the sentence holds. Write one question about "
    "the sentence whose answer is exactly that answer. The question must make sense on its own: name the "
    "organisation, product or thing it asks about. It must not contain the answer. Reply with the question "
    "only, on one line."
)
TARGETED_ANSWERS = ("the north pier", "Ana Whitcombe", "R-12")
TARGETED_QUESTIONS = (
    "Where does the river ferry at Oakridge leave from?",
    "Who is the head chef of the Blue Heron restaurant?",
    "Which form do members of the Harbour Rowing Club use to pay their yearly fees?",
)
PARAPHRASE_INSTRUCTION = (
    "You reword questions. Write the given question again in different words, the way another person might "
    "ask it. Keep its meaning and every name in it exactly, and do not answer it. Reply with the reworded "
    "question only, on one line."
)
PARAPHRASE_EXAMPLES = (
    (
        "How often does the river ferry at Oakridge leave?",
        "How frequently does the Oakridge river ferry depart?",
    ),
    (
        "Who is the head chef of the Blue Heron restaurant?",
        "Who runs the kitchen at the Blue Heron restaurant?",
    ),
    (
        "Which form do members of the Harbour Rowing Club use to pay their yearly fees?",
        "What form do Harbour Rowing Club members fill in to pay the yearly fee?",
    ),
)

_LABEL = re.compile(r"^(?:question|reworded(?: question)?|paraphrase|rewrite|q)\s*[:.-]\s*", re.IGNORECASE)
_NUMBERING = re.compile(r"^(?:\d+[.)]|[-*•])\s+")
_WRAPPERS = "\"'“”‘’*` "


def question_messages(section: str, sentence: str) -> list[Message]:
    """The chat that asks for one question answered by `sentence` (from `section`)."""
    messages: list[Message] = [{"role": "system", "content": QUESTION_INSTRUCTION}]
    for example_section, example_sentence, question in QUESTION_EXAMPLES:
        messages.append({"role": "user", "content": _question_request(example_section, example_sentence)})
        messages.append({"role": "assistant", "content": question})
    messages.append({"role": "user", "content": _question_request(f"Section: {section}", sentence)})
    return messages


def targeted_messages(section: str, sentence: str, answer: str) -> list[Message]:
    """The chat that asks for one question about `sentence` whose answer is `answer`."""
    messages: list[Message] = [{"role": "system", "content": TARGETED_INSTRUCTION}]
    examples = zip(QUESTION_EXAMPLES, TARGETED_ANSWERS, TARGETED_QUESTIONS, strict=True)
    for (example_section, example_sentence, _), example_answer, question in examples:
        request = _question_request(example_section, example_sentence)
        messages.append({"role": "user", "content": f"{request}\nAnswer: {example_answer}"})
        messages.append({"role": "assistant", "content": question})
    request = _question_request(f"Section: {section}", sentence)
    messages.append({"role": "user", "content": f"{request}\nAnswer: {answer}"})
    return messages


def paraphrase_messages(question: str) -> list[Message]:
    """The chat that asks for one rewording of `question`."""
    messages: list[Message] = [{"role": "system", "content": PARAPHRASE_INSTRUCTION}]
    for original, reworded in PARAPHRASE_EXAMPLES:
        messages.append({"role": "user", "content": f"Question: {original}"})
        messages.append({"role": "assistant", "content": reworded})
    messages.append({"role": "user", "content": f"Question: {question}"})
    return messages


def parse_question(reply: str) -> str | None:
    """The question in a teacher's reply: its first non-empty line without labels, numbering or quotes;
    None when nothing is left."""
    for line in reply.splitlines():
        text = _NUMBERING.sub("", _LABEL.sub("", line.strip().strip(_WRAPPERS))).strip(_WRAPPERS)
        if text:
            return " ".join(text.split())
    return None


def section_label(document_title: str, heading: str) -> str:
    """How a sentence's place is described to the teacher: "Document - Heading"."""
    if heading and heading.lower() != document_title.lower():
        return f"{document_title} - {heading}"
    return document_title


def _question_request(section: str, sentence: str) -> str:
    return f"{section}\nSentence: {sentence}"
