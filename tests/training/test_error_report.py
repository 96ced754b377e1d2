"""``training.error_report``: which utterances a model got wrong, and how."""

from __future__ import annotations

from training.error_report import sentiment_errors, tagger_errors

TOKENS = [
    ["fly", "to", "new", "york"],
    ["fares", "from", "boston"],
    ["hello"],
]
GOLD = [
    ["O", "O", "B-city", "I-city"],
    ["O", "O", "B-from"],
    ["O"],
]


def test_a_right_utterance_is_not_reported() -> None:
    intents = ["flight", "fare", "greet"]
    assert tagger_errors(TOKENS, GOLD, GOLD, intents, intents) == []


def test_wrong_bounds_are_one_chunk_missed_and_one_spurious() -> None:
    pred = [["O", "O", "B-city", "O"], GOLD[1], GOLD[2]]
    intents = ["flight", "fare", "greet"]
    (record,) = tagger_errors(TOKENS, GOLD, pred, intents, intents)
    assert record == {
        "line": 1,
        "text": "fly to new york",
        "gold_intent": "flight",
        "pred_intent": "flight",
        "intent_correct": True,
        "missed": [{"slot": "city", "first": 2, "last": 3, "text": "new york"}],
        "spurious": [{"slot": "city", "first": 2, "last": 2, "text": "new"}],
    }


def test_a_wrong_intent_alone_is_reported_with_no_slot_diff() -> None:
    (record,) = tagger_errors(
        TOKENS, GOLD, GOLD, ["flight", "fare", "greet"], ["flight", "flight", "greet"]
    )
    assert (record["line"], record["gold_intent"], record["pred_intent"]) == (2, "fare", "flight")
    assert not record["intent_correct"]
    assert record["missed"] == record["spurious"] == []


def test_a_stray_inside_tag_counts_as_a_chunk_as_in_conlleval() -> None:
    pred = [GOLD[0], GOLD[1], ["I-city"]]
    (record,) = tagger_errors(TOKENS, GOLD, pred, None, ["a", "b", "c"])
    assert record["line"] == 3
    assert record["gold_intent"] is None and record["intent_correct"] is None  # nothing to check
    assert record["spurious"] == [{"slot": "city", "first": 0, "last": 0, "text": "hello"}]


def test_sentiment_errors_are_the_misclassified_rows() -> None:
    texts = ["great", "awful", "meh"]
    assert sentiment_errors(texts, ["pos", "neg", "neu"], ["pos", "pos", "neu"]) == [
        {"row": 2, "text": "awful", "gold": "neg", "pred": "pos"}
    ]
