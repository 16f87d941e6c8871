from training.docs.spans import answer_spans, key_spans
from training.docs.text import Vocabulary


def texts(sentence: str, **kwargs) -> list[tuple[str, str]]:
    return [(span.text, span.kind) for span in key_spans(sentence, **kwargs)]


def test_named_quoted_name_and_number_spans():
    assert texts("The safety drill of the Harbour Rowing Club is called the Fogbell Drill.") == [
        ("Fogbell Drill", "named"),
        ("Harbour Rowing Club", "name"),
    ]
    assert texts('The motto is "Row with the tide."') == [("Row with the tide", "quoted")]
    assert texts(
        "A complaint sent to the board is called a kettle ticket, and it is answered in two days."
    ) == [
        ("kettle ticket", "named"),
        ("two days", "number"),
    ]


def test_codes_and_numbers_inside_names_stay_whole():
    assert texts("Members pay with Form R-12 before the Driftglass 2 launch.") == [
        ("Form R-12", "name"),
        ("Driftglass 2", "name"),
    ]


def test_words_capitalised_only_by_the_sentence_start_are_not_names():
    assert texts("During the Fogbell Drill every member rows.") == [("Fogbell Drill", "name")]
    assert texts("Tidewrack stands on the quay.") == []
    assert texts("Tidewrack stands on the quay.", names=frozenset({"Tidewrack"})) == [("Tidewrack", "name")]


def test_answer_spans_leave_out_the_corpus_common_name():
    vocab = Vocabulary.build(
        ["The Harbour Club rows.", "The Harbour Club sails.", "The Harbour Club swims."] * 2
    )
    spans = answer_spans("The Harbour Club was founded by Edda Marchetti-Holm.", vocab)
    assert [span.text for span in spans] == ["Edda Marchetti-Holm"]
