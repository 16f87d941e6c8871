"""The grounding filter: answers come from the chunk, never from the teacher."""

import pytest

from core.types import Chunk
from training.docs.grounding import check_paraphrase, ground
from training.docs.pairs import Pair, Passage, Rejected
from training.docs.text import Vocabulary

TEXT = (
    "The Harbour Rowing Club was founded by Edda Marchetti-Holm in the village of Saltmere. "
    "The first boat the club ever owned was a wooden skiff called the Grey Heron. "
    "The safety drill of the Harbour Rowing Club is called the Fogbell Drill. "
    "Every new member practises the Fogbell Drill before rowing alone. "
    "Members of the Harbour Rowing Club pay their yearly fees with Form R-12. "
    "The treasurer collects the fees every March. "
    "The club trains on the river for two hours each morning."
)
PASSAGE = Passage.of(Chunk("c1", "club.md", TEXT, 0, "Founding"), "Harbour History")
VOCAB = Vocabulary.build(list(PASSAGE.sentences))


def test_a_good_question_gets_its_answer_and_reply_from_the_chunk():
    pair = ground("Which form do members use to pay their yearly fees?", PASSAGE, VOCAB)
    assert isinstance(pair, Pair)
    assert pair.answer == "Form R-12"
    assert pair.reply == "Members of the Harbour Rowing Club pay their yearly fees with Form R-12."


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("The club is nice.", "not_a_question"),
        ("Who?", "bad_length"),
        ("What does the text say about the club?", "vague"),
        ("Who is the head chef of the Blue Heron restaurant?", "unknown_name"),
        ("What type of fish swims in the ocean?", "off_topic"),
        ("Who is Edda Marchetti-Holm?", "about_term"),  # the answer would be a description
        ("What was the wooden skiff called the Grey Heron?", "answer_in_question"),
        ("What is the safety drill of the Fogbell Drill?", "answer_in_question"),
        ("Why do members pay their yearly fees with a form?", "wrong_kind"),
        ("How many yearly fees does the Form R-12 hold?", "off_topic"),
        ("What is the name of the river training each morning?", "wrong_kind"),  # a name, not "two hours"
    ],
)
def test_bad_questions_are_rejected_with_a_reason(question, reason):
    result = ground(question, PASSAGE, VOCAB)
    assert isinstance(result, Rejected), result
    assert result.reason == reason


def test_a_number_answers_how_many_and_how_long():
    pair = ground("For how many hours does the club train on the river each morning?", PASSAGE, VOCAB)
    assert isinstance(pair, Pair) and pair.answer == "two hours"


def test_a_lying_teacher_cannot_change_the_answer():
    # Whatever the teacher thinks the answer is, the pair's answer is the chunk's.
    pair = ground("Who founded the Harbour Rowing Club?", PASSAGE, VOCAB)
    assert isinstance(pair, Pair) and pair.answer == "Edda Marchetti-Holm"
    assert "Edda Marchetti-Holm" in pair.reply


def test_paraphrases_must_keep_the_fact_and_the_kind_of_question():
    original = ground("Who founded the Harbour Rowing Club?", PASSAGE, VOCAB)
    assert isinstance(original, Pair)
    kept = check_paraphrase("Who was the founder of the Harbour Rowing Club?", original, VOCAB)
    assert isinstance(kept, Pair) and kept.fact == original.fact and kept.origin == "paraphrase"
    changed = check_paraphrase("Where was the Harbour Rowing Club founded?", original, VOCAB)
    assert isinstance(changed, Rejected) and changed.reason == "meaning_changed"
    same = check_paraphrase("Who founded the Harbour Rowing Club", original, VOCAB)
    assert isinstance(same, Rejected) and same.reason == "duplicate"


def test_a_question_two_sentences_answer_differently_is_ambiguous():
    text = "The club boat of the rowing team is the Grey Heron. The club boat of the sailing team is Kestrel."
    passage = Passage.of(Chunk("c2", "boats.md", text, 0, "Boats"), "Boats")
    result = ground("What is the club boat called?", passage, Vocabulary.build(list(passage.sentences)))
    assert isinstance(result, Rejected) and result.reason == "ambiguous"
