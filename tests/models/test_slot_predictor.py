"""models.predictor: slots with raw-text offsets and confidences, batch == one by one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.artifact import load_artifact
from models.predictor import (
    Parse,
    SentimentPredictor,
    SlotTaggerPredictor,
    Span,
    bio_spans,
)
from models.slot_tagger import BiLSTMCRFTagger, TaggerConfig
from models.vocab import LabelSet, Vocab

TEXTS = [
    "Book a table for 2 at 7:30pm, please!",
    "book  a   table\tfor two  at 7pm tomorrow",
    "Fly me from St. Louis to Zürich on Friday.",
    "cafe\u0301 in São Paulo 👍",
    "hello",
    "!!!",
    "  leading and trailing  ",
]
TAGS = ["O", "B-time", "I-time", "B-city", "I-city", "B-party_size"]


@pytest.fixture(scope="module")
def busy_tagger() -> SlotTaggerPredictor:
    """An untrained tagger with loud emissions: it predicts many slots, long and short."""
    torch.manual_seed(0)
    words = Vocab(["book", "a", "table", "for", "2", "at", "0:00pm", "fly", "to", "st"])
    chars = Vocab(list("abcdefghijklmnopqrstuvwxyz0123456789"))
    config = TaggerConfig(
        vocab_size=len(words), char_vocab_size=len(chars), num_tags=len(TAGS), num_intents=3,
        word_dim=8, char_dim=4, char_filters=4, shape_dim=2, hidden_size=8, dropout=0.0,
    )  # fmt: skip
    model = BiLSTMCRFTagger(config, TAGS)
    with torch.no_grad():
        model.emit.weight.mul_(30)
        model.emit.bias.copy_(torch.tensor([-2.0, 0, 0, 0, 0, 0]))
    return SlotTaggerPredictor(model, words, chars, LabelSet(TAGS), LabelSet(["x", "y", "z"]))


@pytest.fixture(params=["busy", "trained"])
def tagger(
    request: pytest.FixtureRequest, busy_tagger: SlotTaggerPredictor, tiny_tagger_dir: Path
) -> SlotTaggerPredictor:
    if request.param == "busy":
        return busy_tagger
    predictor = load_artifact(tiny_tagger_dir).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    return predictor


def check_parse(text: str, parse: Parse) -> None:
    assert len(parse.tags) == len(parse.tokens)
    starts, ends = {t.start for t in parse.tokens}, {t.end for t in parse.tokens}
    spans = bio_spans(parse.tags)
    assert [s.slot for s in parse.slots] == [s.slot for s in spans]
    for slot, span in zip(parse.slots, spans, strict=True):
        assert text[slot.start : slot.end] == slot.value
        assert slot.start == parse.tokens[span.first].start
        assert slot.end == parse.tokens[span.last].end
        assert slot.start in starts and slot.end in ends
        assert 0.0 <= slot.confidence <= 1.0
    probs = [p for _, p in parse.intent_ranking]
    assert probs == sorted(probs, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probs) and sum(probs) <= 1.0 + 1e-6


def test_busy_tagger_really_predicts_slots(busy_tagger: SlotTaggerPredictor) -> None:
    slots = [s for p in busy_tagger.parse(TEXTS) for s in p.slots]
    assert len(slots) >= 5
    assert any(s.end - s.start > len(s.value.split()[0]) for s in slots)  # multi-token spans
    assert len({round(s.confidence, 3) for s in slots}) > 1


def test_parse_offsets_and_confidences(tagger: SlotTaggerPredictor) -> None:
    for text, parse in zip(TEXTS, tagger.parse(TEXTS), strict=True):
        check_parse(text, parse)


def test_batch_parse_equals_single_parses(tagger: SlotTaggerPredictor) -> None:
    batch = tagger.parse(TEXTS)
    for text, together in zip(TEXTS, batch, strict=True):
        (alone,) = tagger.parse([text])
        assert alone.tokens == together.tokens
        assert alone.tags == together.tags
        for a, b in zip(alone.slots, together.slots, strict=True):
            assert (a.slot, a.value, a.start, a.end) == (b.slot, b.value, b.start, b.end)
            assert a.confidence == pytest.approx(b.confidence, abs=1e-5)
        assert [n for n, _ in alone.intent_ranking] == [n for n, _ in together.intent_ranking]
        assert [p for _, p in alone.intent_ranking] == pytest.approx(
            [p for _, p in together.intent_ranking], abs=1e-5
        )


def test_punctuation_only_text_is_read_as_symbols(busy_tagger: SlotTaggerPredictor) -> None:
    (parse,) = busy_tagger.parse(["!!!"])
    assert [t.text for t in parse.tokens] == ["!", "!", "!"]


@pytest.mark.parametrize("texts", [[""], ["   "], ["hello", "\t"]])
def test_parse_refuses_texts_without_tokens(
    busy_tagger: SlotTaggerPredictor, texts: list[str]
) -> None:
    with pytest.raises(ValueError, match="at least one token"):
        busy_tagger.parse(texts)


@pytest.mark.parametrize("top_k,expected", [(1, 1), (2, 2), (5, 3)])
def test_top_k_intents(busy_tagger: SlotTaggerPredictor, top_k: int, expected: int) -> None:
    (parse,) = busy_tagger.parse(["book a table"], top_k=top_k)
    assert len(parse.intent_ranking) == expected


@pytest.mark.parametrize(
    "tags,spans",
    [
        ([], []),
        (["O", "O"], []),
        (["B-a", "I-a", "O", "B-b"], [Span("a", 0, 1), Span("b", 3, 3)]),
        (["B-a", "B-a"], [Span("a", 0, 0), Span("a", 1, 1)]),
        (["B-a", "I-b"], [Span("a", 0, 0), Span("b", 1, 1)]),
        (["I-a", "I-a"], [Span("a", 0, 1)]),  # a stray I-x opens a chunk (conlleval)
        (["O", "I-a", "B-a", "I-a"], [Span("a", 1, 1), Span("a", 2, 3)]),
        (["B-from_city", "I-from_city", "I-from_city"], [Span("from_city", 0, 2)]),
        (["B-a", "I-a", "I-a", "B-a"], [Span("a", 0, 2), Span("a", 3, 3)]),
    ],
)
def test_bio_spans(tags: list[str], spans: list[Span]) -> None:
    assert bio_spans(tags) == spans


def test_sentiment_predictor(tiny_sentiment_dir: Path) -> None:
    predictor = load_artifact(tiny_sentiment_dir).predictor
    assert isinstance(predictor, SentimentPredictor)
    texts = ["Great crew, thanks!!", "My bag never showed up.", "Is flight UA212 on time?"]
    together = predictor.classify(texts)
    for text, result in zip(texts, together, strict=True):
        assert set(result.scores) == set(predictor.labels.labels)
        assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert result.label == max(result.scores, key=result.scores.__getitem__)
        assert result.confidence == result.scores[result.label]
        (alone,) = predictor.classify([text])
        assert alone.label == result.label
        assert alone.confidence == pytest.approx(result.confidence, abs=1e-5)
    with pytest.raises(ValueError, match="at least one token"):
        predictor.classify([" "])


def test_bio_masks_move_with_the_model_and_stay_out_of_its_weights() -> None:
    """Training on CUDA masks CUDA scores: ``.to(device)`` must move the BIO masks with the
    parameters (they stayed on the CPU once, and the first CUDA step failed). The meta device
    stands in for a GPU here; the artifact's weights keep their keys."""
    config = TaggerConfig(
        vocab_size=4, char_vocab_size=4, num_tags=len(TAGS), num_intents=2,
        word_dim=4, char_dim=4, char_filters=4, shape_dim=2, hidden_size=4,
    )  # fmt: skip
    model = BiLSTMCRFTagger(config, TAGS)
    keys = set(model.state_dict())
    assert not any(k.startswith("allowed") for k in keys)
    model.to(torch.device("meta"))
    params = model.crf_params()
    assert params.start.device.type == params.transitions.device.type == "meta"
    assert {b.device.type for b in model.buffers()} == {"meta"}
    assert set(model.state_dict()) == keys
