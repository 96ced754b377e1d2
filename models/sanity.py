"""A model checks its own behaviour before it serves: valid utterances stored with the artifact.

At training time, up to :data:`SAMPLE_SIZE` utterances of the valid split (spread over it)
are written to ``sanity.json`` with their gold labels, and the new model's scores on exactly
these go into the manifest (``metrics["sanity"]``). Before a version serves, the loaded model
parses them again and must score within :data:`TOLERANCE` of what the manifest says. Weights
swapped under a rewritten checksum, or a model other than the one trained, are refused; the
same weights on another CPU score the same (a flip of one utterance moves a score by 1/n).

An artifact written before this check has no ``sanity.json``: it is loaded unchecked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import ArtifactError
from models.predictor import SentimentPredictor, SlotTaggerPredictor

SANITY = "sanity.json"
SAMPLE_SIZE = 64
# Largest drop of any score below the one recorded at training time.
TOLERANCE = 0.1

Predictor = SlotTaggerPredictor | SentimentPredictor


@dataclass(frozen=True)
class SanitySample:
    """Gold-labelled utterances and the scores of the model they were saved with.

    Tagger examples: ``{"text", "intents": [...], "slots": [[start, end, slot], ...],
    "requested_slots": [...]}`` (character offsets into ``text``); sentiment examples:
    ``{"text", "label"}``.
    """

    examples: list[dict[str, Any]]
    scores: dict[str, float]


def spread(items: Sequence[Any], n: int = SAMPLE_SIZE) -> list[Any]:
    """At most ``n`` of ``items``, evenly spaced, in order."""
    if len(items) <= n:
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def score(predictor: Predictor, examples: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Slot F1 over exact (start, end, slot) spans and intent accuracy (the predicted intents
    are the gold ones) of a tagger; accuracy of a sentiment model."""
    texts = [str(e["text"]) for e in examples]
    if not texts:
        return {}
    if isinstance(predictor, SentimentPredictor):
        results = predictor.classify(texts)
        right = sum(r.label == e["label"] for r, e in zip(results, examples, strict=True))
        return {"accuracy": right / len(texts)}
    requested = [list(e.get("requested_slots") or []) for e in examples]
    parses = predictor.parse(texts, requested=requested if any(requested) else None)
    found = gold = hits = intents_right = 0
    for parse, example in zip(parses, examples, strict=True):
        want = {(int(s), int(e), str(n)) for s, e, n in example.get("slots", [])}
        got = {(s.start, s.end, s.slot) for s in parse.slots}
        found, gold, hits = found + len(got), gold + len(want), hits + len(got & want)
        # Parse.intents: the best one, a multi-label model's above its threshold (maybe
        # none), none for a model without intents (DSTC8 spans).
        names = {n for n, _ in parse.intents}
        intents_right += names == set(example.get("intents", []))
    f1 = 2 * hits / (found + gold) if found + gold else 1.0
    return {"slot_f1": f1, "intent_accuracy": intents_right / len(texts)}


def build(predictor: Predictor, examples: Sequence[dict[str, Any]]) -> SanitySample:
    """The sample saved with a model: a spread of ``examples`` and its scores on them."""
    chosen = spread(examples)
    return SanitySample(chosen, score(predictor, chosen))


def write(folder: Path, sample: SanitySample) -> None:
    """``sanity.json`` in an artifact being written."""
    text = json.dumps({"examples": sample.examples}, ensure_ascii=False, indent=1)
    (folder / SANITY).write_text(text + "\n", encoding="utf-8")


def check(folder: Path, predictor: Predictor, recorded: dict[str, Any]) -> None:
    """Parse the stored utterances with the loaded model and compare with ``recorded`` (the
    manifest's ``metrics["sanity"]``); ``ArtifactError`` if a score fell more than
    :data:`TOLERANCE` or the sample is unreadable. Nothing to check without a sample."""
    path = folder / SANITY
    if not path.is_file() and not recorded:
        return
    try:
        examples = json.loads(path.read_text(encoding="utf-8"))["examples"]
        now = score(predictor, examples)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ArtifactError(f"{path}: unreadable sanity sample ({err})") from err
    for name, then in recorded.items():
        if name in now and isinstance(then, int | float) and now[name] < then - TOLERANCE:
            raise ArtifactError(
                f"{folder}: fails its sanity check: {name} {now[name]:.4f} on the "
                f"{len(examples)} valid utterances stored with it, {then:.4f} when it was "
                "trained (weights replaced or damaged)"
            )
