"""The utterances a model gets wrong, one record each: what ``slotfill evaluate --errors`` writes.

Scores say how often a model is wrong; these records say where, so that an operator can tell
a model error from a doubtful gold label before retraining.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from models.predictor import bio_spans


def _chunks(tokens: Sequence[str], tags: Sequence[str]) -> set[tuple[str, int, int, str]]:
    """(slot, first token, last token, text) of each chunk, as conlleval reads them."""
    return {
        (s.slot, s.first, s.last, " ".join(tokens[s.first : s.last + 1])) for s in bio_spans(tags)
    }


def _span_json(chunk: tuple[str, int, int, str]) -> dict[str, Any]:
    slot, first, last, text = chunk
    return {"slot": slot, "first": first, "last": last, "text": text}


def tagger_errors(
    tokens: Sequence[Sequence[str]],
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
    gold_intents: Sequence[str] | None,
    pred_intents: Sequence[str],
) -> list[dict[str, Any]]:
    """One record per utterance with a wrong intent or any slot chunk missed or spurious.

    ``line`` is 1-based, as in the split's files. ``missed``: gold chunks not predicted;
    ``spurious``: predicted chunks not in the gold (a chunk with the wrong label or bounds is
    both). ``gold_intent`` and ``intent_correct`` are null when the split has no labels.
    """
    records: list[dict[str, Any]] = []
    for i, (toks, gold, pred) in enumerate(zip(tokens, gold_tags, pred_tags, strict=True)):
        gold_chunks, pred_chunks = _chunks(toks, gold), _chunks(toks, pred)
        gold_intent = gold_intents[i] if gold_intents is not None else None
        intent_correct = None if gold_intent is None else gold_intent == pred_intents[i]
        if intent_correct is not False and gold_chunks == pred_chunks:
            continue
        records.append(
            {
                "line": i + 1,
                "text": " ".join(toks),
                "gold_intent": gold_intent,
                "pred_intent": pred_intents[i],
                "intent_correct": intent_correct,
                "missed": [_span_json(c) for c in sorted(gold_chunks - pred_chunks)],
                "spurious": [_span_json(c) for c in sorted(pred_chunks - gold_chunks)],
            }
        )
    return records


def sentiment_errors(
    texts: Sequence[str], gold: Sequence[str], pred: Sequence[str]
) -> list[dict[str, Any]]:
    """One record per misclassified text; ``row`` counts the file's data rows from 1 (the
    header and blank lines are not rows)."""
    return [
        {"row": i + 1, "text": text, "gold": g, "pred": p}
        for i, (text, g, p) in enumerate(zip(texts, gold, pred, strict=True))
        if g != p
    ]
