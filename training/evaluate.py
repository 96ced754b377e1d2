"""Scoring a model on a labelled split: the scores, and the predictions they were computed from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.predictor import SentimentPredictor, SlotTaggerPredictor
from models.text import TextScheme, sentiment_words
from training.data import SlotDataset, TextDataset
from training.metrics import classification_metrics
from training.tagging import TaggingSet, as_tagging
from training.tagging_eval import evaluate_tagging

EVAL_BATCH = 256


@dataclass(frozen=True)
class TaggerPredictions:
    """A tagger's BIO tags and best intent for each utterance of a split."""

    tags: list[list[str]]
    intents: list[str]


def evaluate_tagger(
    predictor: SlotTaggerPredictor, data: SlotDataset | TaggingSet
) -> tuple[dict[str, Any], TaggerPredictions]:
    """Tag ``data`` in batches; its scores (:func:`training.tagging_eval.evaluate_tagging`)
    and the predictions, a multi-label model's intents joined by ``#``."""
    scores, predicted = evaluate_tagging(predictor, as_tagging(data))
    return scores, TaggerPredictions(predicted["tags"], ["#".join(p) for p in predicted["intents"]])


def sentiment_inputs(
    texts: Sequence[str], reader: TextScheme | SentimentPredictor
) -> list[list[str]]:
    """What a classifier reads of each text, tokenized as the server does: the words of a
    text scheme, or what a predictor reads (word pieces for a transformer); a text without
    tokens reads as ``<empty>``."""
    if isinstance(reader, SentimentPredictor):
        return [tokens or ["<empty>"] for tokens in reader.inputs(texts)]
    return [sentiment_words(x, reader) or ["<empty>"] for x in texts]


def evaluate_sentiment_tokens(
    predictor: SentimentPredictor, sentences: Sequence[Sequence[str]], gold: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """Classify tokenized sentences in batches; their scores and the predicted labels."""
    pred: list[str] = []
    for i in range(0, len(sentences), EVAL_BATCH):
        pred.extend(r.label for r in predictor.classify_tokens(sentences[i : i + EVAL_BATCH]))
    return classification_metrics(gold, pred), pred


def evaluate_sentiment(
    predictor: SentimentPredictor, data: TextDataset
) -> tuple[dict[str, Any], list[str]]:
    """Score a TSV data set read with the server's tokenizer; the scores and the predictions."""
    return evaluate_sentiment_tokens(
        predictor, sentiment_inputs(data.texts, predictor), data.labels
    )
