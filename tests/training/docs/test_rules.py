from core.types import Chunk
from training.docs.pairs import Passage
from training.docs.rules import cloze, keyword_query, pattern_questions, rule_pairs, wh_question
from training.docs.spans import key_spans
from training.docs.text import Vocabulary


def questions(sentence: str) -> list[tuple[str, str]]:
    return [(question, span.text) for question, span in pattern_questions(sentence)]


def test_pattern_questions_read_like_questions_people_ask():
    assert questions("The Harbour Rowing Club was founded by Edda Marchetti-Holm.") == [
        ("Who founded the Harbour Rowing Club?", "Edda Marchetti-Holm")
    ]
    assert questions("The safety drill of the club is called the Fogbell Drill.") == [
        ("What is the safety drill of the club called?", "Fogbell Drill")
    ]
    assert questions("At the club, a late fee is called a barnacle.") == [
        ("At the club, what is a late fee called?", "barnacle")
    ]
    assert questions("The head coach of the club is Ansel Brightwood.") == [
        ("Who is the head coach of the club?", "Ansel Brightwood")
    ]
    assert questions("It is called Tidewrack House.") == []  # no subject to ask about


def test_wh_cloze_and_keyword_forms():
    sentence = "Members pay their yearly fees with Form R-12, every March."
    span = key_spans(sentence)[0]
    assert wh_question(sentence, span) == "Members pay their yearly fees with what?"
    assert cloze(sentence, span) == "Fill in the blank: Members pay their yearly fees with ____, every March."
    assert keyword_query("Which form do members use to pay fees?") == "form members use pay fees?"
    assert keyword_query("What is it?") is None


def test_every_rule_pair_replies_with_a_document_sentence_holding_its_answer():
    text = "The clubhouse is a building called Tidewrack House. Tidewrack House holds twelve boats."
    passage = Passage.of(Chunk("c1", "history.md", text, 0, "The clubhouse"), "Harbour History")
    pairs = rule_pairs(passage, Vocabulary.build(list(passage.sentences)))
    origins = {pair.origin for pair in pairs}
    assert {"rule:pattern", "rule:wh", "rule:cloze", "rule:term", "rule:heading"} <= origins
    for pair in pairs:
        assert pair.reply.startswith(pair.sentence) and pair.sentence in passage.sentences
        assert pair.answer in pair.sentence
    heading = next(pair for pair in pairs if pair.origin == "rule:heading")
    assert heading.question == "What does Harbour History say about the clubhouse?"
