"""Score a tagger on aligned examples: the existing slot and intent scores, plus multi-label
intent scores and the slot F1 of the utterances that follow a question."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from models.predictor import SlotTaggerPredictor
from training.metrics import slot_metrics
from training.multilabel import above, exact_match, micro_f1, tune_threshold
from training.tagging import TaggingSet

EVAL_BATCH = 256


def predict_tagging(
    predictor: SlotTaggerPredictor, data: TaggingSet
) -> tuple[list[list[str]], np.ndarray]:
    """BIO tags per example and intent probabilities ``(n, num_intents)`` in the model's
    intent order, in batches; requested slots go in when the model reads them."""
    tags: list[list[str]] = []
    probs: list[np.ndarray] = []
    known = set(predictor.requested.labels)  # a slot never requested in training: no context
    requested = [[s for s in row if s in known] for row in data.requested]
    for i in range(0, len(data), EVAL_BATCH):
        part_tags, part_probs = predictor.tag_probs(
            data.tokens[i : i + EVAL_BATCH], requested[i : i + EVAL_BATCH]
        )
        tags.extend(part_tags)
        probs.append(part_probs)
    return tags, np.concatenate(probs) if probs else np.zeros((0, len(predictor.intents)))


def evaluate_tagging(
    predictor: SlotTaggerPredictor, data: TaggingSet
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scores, predictions) of ``predictor`` on ``data``.

    Scores: ``slot_f1``, ``slot_precision``, ``slot_recall``, ``intent_accuracy``,
    ``exact_match``, ``n``; a multi-label model adds ``intent_f1`` (micro) and
    ``intent_exact_match`` (set equality; its ``intent_accuracy`` is that too); data with
    requested slots adds ``slot_f1_requested`` (slot F1 on those utterances).
    Predictions: ``tags``, ``intents`` (one list per example, best first).
    """
    pred_tags, probs = predict_tagging(predictor, data)
    labels = predictor.intents.labels
    multi = predictor.model.config.multi_label
    if not labels:
        pred_sets: list[list[str]] = [[] for _ in pred_tags]
    elif multi:
        pred_sets = above(probs, labels, predictor.model.config.intent_threshold)
    else:
        pred_sets = [[labels[int(j)]] for j in probs.argmax(axis=1)]
    if multi:
        gold_flat = ["+".join(sorted(g)) for g in data.intents]
        pred_flat = ["+".join(sorted(p)) for p in pred_sets]
    else:
        gold_flat, pred_flat = data.single_intents() or [], [p[0] if p else "" for p in pred_sets]
    scores = slot_metrics(data.tags, pred_tags, gold_flat if data.has_intents else None, pred_flat)
    if multi:
        scores["intent_f1"] = micro_f1(data.intents, pred_sets)
        scores["intent_exact_match"] = exact_match(data.intents, pred_sets)
    if data.has_context:
        asked = [i for i, r in enumerate(data.requested) if r]
        scores["slot_f1_requested"] = slot_metrics(
            [data.tags[i] for i in asked], [pred_tags[i] for i in asked], None, []
        )["slot_f1"]
    return scores, {"tags": pred_tags, "intents": pred_sets, "probs": probs}


def tune_intent_threshold(predictor: SlotTaggerPredictor, data: TaggingSet) -> float:
    """Set a multi-label model's intent threshold to the one with the best micro-F1 on
    ``data`` (its valid split) and return it."""
    _, probs = predict_tagging(predictor, data)
    threshold = tune_threshold(probs, predictor.intents.labels, data.intents)
    model = predictor.model
    model.config = replace(model.config, intent_threshold=threshold)
    return threshold
