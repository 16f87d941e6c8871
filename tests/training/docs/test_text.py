from training.docs.text import (
    Vocabulary,
    contains_phrase,
    is_question,
    same_question,
    sentences,
    similar_question,
)


def test_sentences_split_paragraphs_lists_and_abbreviations():
    text = (
        "The shop was called Brightwater Canvas Co. The name changed later.\n\n"
        "It sells **waxed** bags, e.g. the [Wrenlow](http://x) pack.\n\n"
        "- Make it last.\n- Keep it simple.\n\n"
        "```\ncode is not prose.\n```\n| table | row |"
    )
    assert sentences(text) == [
        "The shop was called Brightwater Canvas Co.",
        "The name changed later.",
        "It sells waxed bags, e.g. the Wrenlow pack.",
        "Make it last.",
        "Keep it simple.",
    ]


def test_a_rewording_is_similar_but_not_the_same_question():
    original = "Who founded the Harbour Rowing Club?"
    reworded = "Who was the founder of the Harbour Rowing Club?"
    assert not same_question(original, reworded)  # kept as a second phrasing for training
    assert similar_question(original, reworded)  # but never next to it as train and eval
    assert same_question(original, "who founded the harbour rowing club")


def test_questions_about_other_facts_of_one_sentence_are_not_similar():
    assert not similar_question("Who founded the club?", "Where was the club founded?")


def test_common_words_do_not_make_questions_similar():
    common = Vocabulary.build(["The Harbour Club rows.", "The Harbour Club sails."] * 3).common
    assert not similar_question("What is the Harbour Club's boat?", "What is the Harbour Club's fee?", common)


def test_contains_phrase_matches_whole_words_only():
    assert contains_phrase("Is Form R-12 due?", "form r-12")
    assert not contains_phrase("The grey heron", "heron boat")
    assert not contains_phrase("Fogbells", "Fogbell")


def test_is_question():
    assert is_question("Who coaches the crews?")
    assert is_question("Name the club's mascot")
    assert not is_question("The club has a mascot.")
    assert not is_question("Who coaches? Who rows?")
