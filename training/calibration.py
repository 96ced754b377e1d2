"""Fit the temperatures of ``models.calibration`` on a labelled split and measure calibration.

Intents and sentiment labels: the temperature minimises the negative log-likelihood of the gold
labels (softmax; a multi-label tagger's sigmoids: binary cross-entropy summed over intents), as
Guo et al. (2017) fit it.

Spans: the temperature divides the CRF's emissions and transitions; it minimises the binary
negative log-likelihood of "this predicted span is exactly right" under the span confidence the
server reports (the marginal probability of that exact span). That is a proper scoring rule on
the very number served, over the spans a parse returns. The CRF's likelihood of the gold paths
would fit the whole distribution over labellings instead, which is dominated by the many ``O``
tokens and is not what a client thresholds. Viterbi paths do not change with the temperature,
so the predicted spans are fixed and only their confidences move.

ECE (expected calibration error): 15 equal-width confidence bins ``(k/15, (k+1)/15]`` (0 in the
first); the sum over bins of the bin's share of items times ``|accuracy - mean confidence|``.
Intents: the best intent's probability against whether it is right (for a multi-label model,
one of the gold intents). Spans: each predicted span's confidence against whether a gold span
has the same slot and the same tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.calibration import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    Temperatures,
    log_softmax,
    scale_crf_arrays,
    softmax,
)
from models.crf import CRFArrays, forward_backward_arrays, viterbi_decode
from models.features import encode_tokens
from models.predictor import (
    SentimentPredictor,
    SlotTaggerPredictor,
    bio_spans,
    on_device,
    span_confidences,
)
from training.data import TextDataset
from training.evaluate import sentiment_inputs
from training.tagging import TaggingSet
from training.tagging_eval import tune_intent_threshold

ECE_BINS = 15
EVAL_BATCH = 256
_CHUNK = 64  # utterances per forward-backward pass while fitting span temperatures
_EPS = 1e-12


@dataclass(frozen=True)
class Reliability:
    """What a reliability diagram draws: per bin, its items, mean confidence and accuracy."""

    edges: np.ndarray  # (bins + 1,)
    counts: np.ndarray  # (bins,)
    confidence: np.ndarray  # (bins,) mean confidence; 0 in an empty bin
    accuracy: np.ndarray  # (bins,) share right; 0 in an empty bin


def reliability(
    confidences: Sequence[float] | np.ndarray,
    correct: Sequence[float] | np.ndarray,
    bins: int = ECE_BINS,
) -> Reliability:
    """Bin ``confidences`` into ``bins`` equal-width bins ``(lo, hi]`` (0 in the first)."""
    conf = np.asarray(confidences, dtype=np.float64)
    right = np.asarray(correct, dtype=np.float64)
    if conf.shape != right.shape:
        raise ValueError(f"expected as many outcomes as confidences, got {right.shape}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins).astype(np.float64)
    safe = np.maximum(counts, 1.0)
    mean_conf = np.bincount(which, weights=conf, minlength=bins) / safe
    accuracy = np.bincount(which, weights=right, minlength=bins) / safe
    return Reliability(edges, counts.astype(np.int64), mean_conf, accuracy)


def expected_calibration_error(
    confidences: Sequence[float] | np.ndarray,
    correct: Sequence[float] | np.ndarray,
    bins: int = ECE_BINS,
) -> float:
    """ECE over ``bins`` equal-width bins; 0.0 for no items."""
    r = reliability(confidences, correct, bins)
    total = int(r.counts.sum())
    if not total:
        return 0.0
    return float((r.counts * np.abs(r.accuracy - r.confidence)).sum() / total)


def fit_scale(loss: Callable[[float], float]) -> float:
    """The temperature in ``[MIN_TEMPERATURE, MAX_TEMPERATURE]`` that minimises ``loss``:
    a grid of 21 points on log T, then golden-section search between the best point's
    neighbours (the losses here are smooth and, in 1/T, convex or nearly so).

    Without a minimum inside the range, 1.0: the split cannot pin the temperature down. A
    valid split the model gets wholly right (tiny or easy data) has its likelihood rise
    as T -> 0, and scaling to the bound would make every later answer certain.
    """
    grid = np.linspace(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE), 21)
    values = [loss(math.exp(x)) for x in grid]
    best = int(np.argmin(values))
    if best in (0, len(grid) - 1):
        return 1.0
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(math.exp(a)), loss(math.exp(b))
    for _ in range(25):  # the bracket (0.6 wide in log T) shrinks 0.618^25 times: to 4e-6
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(math.exp(b))
    x = (lo + hi) / 2.0
    candidates = [(loss(math.exp(x)), x), (values[best], float(grid[best]))]
    return min(max(math.exp(min(candidates)[1]), MIN_TEMPERATURE), MAX_TEMPERATURE)


def softmax_nll(logits: np.ndarray, gold: np.ndarray, temperature: float) -> float:
    """Mean NLL of class ids ``gold`` (``-1``: a class the model lacks, left out)."""
    keep = gold >= 0
    if not keep.any():
        return 0.0
    logp = log_softmax(logits[keep] / temperature)
    return float(-logp[np.arange(int(keep.sum())), gold[keep]].mean())


def sigmoid_nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Binary cross-entropy of 0/1 ``targets``, summed over the columns, mean over rows."""
    if not len(logits):
        return 0.0
    z = logits / temperature
    # log(1 + e^z) - y z, stable for either sign of z
    bce = np.logaddexp(0.0, z) - targets * z
    return float(bce.sum(axis=1).mean())


def binary_nll(confidences: np.ndarray, correct: np.ndarray) -> float:
    """Mean binary NLL of outcomes ``correct`` under probabilities ``confidences``."""
    if not len(confidences):
        return 0.0
    p = np.clip(confidences, _EPS, 1.0 - _EPS)
    return float(-(correct * np.log(p) + (1.0 - correct) * np.log(1.0 - p)).mean())


@dataclass(frozen=True)
class IntentTargets:
    """Gold intents in the model's label order: ``ids`` (single-label; -1 for an intent the
    model lacks), ``multi_hot`` (multi-label) and the gold name sets for correctness."""

    ids: np.ndarray
    multi_hot: np.ndarray
    gold: list[frozenset[str]]
    multi_label: bool


def intent_targets(
    labels: Sequence[str], intents: Sequence[Sequence[str]], multi_label: bool
) -> IntentTargets:
    """Gold intent rows (a single-label model's ``#``-joined) as model targets."""
    index = {name: i for i, name in enumerate(labels)}
    if multi_label:
        gold = [frozenset(row) for row in intents]
    else:
        gold = [frozenset(["#".join(row)]) for row in intents]
    ids = np.array([index.get(next(iter(g)), -1) if len(g) == 1 else -1 for g in gold])
    hot = np.zeros((len(gold), len(labels)))
    for n, g in enumerate(gold):
        hot[n, [index[name] for name in g if name in index]] = 1.0
    return IntentTargets(ids, hot, gold, multi_label)


def intent_nll(logits: np.ndarray, targets: IntentTargets, temperature: float) -> float:
    """The loss the intent temperature minimises (see the module's docstring)."""
    if targets.multi_label:
        return sigmoid_nll(logits, targets.multi_hot, temperature)
    return softmax_nll(logits, targets.ids, temperature)


def intent_outcomes(
    logits: np.ndarray, targets: IntentTargets, labels: Sequence[str], temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """Best intent's probability and whether it is (one of) the gold intent(s)."""
    z = logits / temperature
    probs = 1.0 / (1.0 + np.exp(-z)) if targets.multi_label else softmax(z)
    best = probs.argmax(axis=1)
    right = np.array([labels[int(j)] in g for j, g in zip(best, targets.gold, strict=True)])
    return probs.max(axis=1), right.astype(np.float64)


@dataclass(frozen=True)
class TaggerOutputs:
    """A tagger's unscaled network outputs on a split, computed once for every temperature:
    Viterbi paths, emissions ``(n, max_len, num_tags)`` padded with 0, the mask, and intent
    logits ``(n, num_intents)``; float64."""

    paths: list[list[int]]
    emissions: np.ndarray
    mask: np.ndarray
    intent_logits: np.ndarray


def tagger_outputs(predictor: SlotTaggerPredictor, data: TaggingSet) -> TaggerOutputs:
    """Run the network over ``data`` in batches (requested slots in, as evaluation does)."""
    known = set(predictor.requested.labels)
    requested = [[s for s in row if s in known] for row in data.requested]
    paths: list[list[int]] = []
    emissions: list[np.ndarray] = []
    logits: list[np.ndarray] = []
    params = predictor.model.crf_params()
    for i in range(0, len(data), EVAL_BATCH):
        batch = on_device(
            predictor.encode(data.tokens[i : i + EVAL_BATCH], requested[i : i + EVAL_BATCH]),
            predictor.model,
        )
        with torch.inference_mode():
            em, il = predictor.model(batch)
            paths.extend(viterbi_decode(em, batch.mask, params))
        em_np = em.double().cpu().numpy()
        emissions.extend(em_np[b, : len(data.tokens[i + b])] for b in range(em_np.shape[0]))
        lengths = [len(t) for t in data.tokens[i : i + EVAL_BATCH]]
        # With the joint reading on, the logits the temperature scales include the slots' fit.
        logits.append(predictor.joint_intent_logits(il.double().cpu().numpy(), em_np, lengths))
    num_tags = len(predictor.tags)
    longest = max((len(t) for t in data.tokens), default=1)
    padded = np.zeros((len(data), longest, num_tags))
    mask = np.zeros((len(data), longest), dtype=bool)
    for n, em_row in enumerate(emissions):
        padded[n, : len(em_row)] = em_row
        mask[n, : len(em_row)] = True
    intent_logits = np.concatenate(logits) if logits else np.zeros((0, len(predictor.intents)))
    return TaggerOutputs(paths, padded, mask, intent_logits)


def span_outcomes(
    predictor: SlotTaggerPredictor,
    outputs: TaggerOutputs,
    gold_tags: Sequence[Sequence[str]],
    temperature: float,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each predicted span's confidence at ``temperature`` and whether it is exactly a gold
    span, over ``rows`` (default: all)."""
    picked = np.arange(len(outputs.paths)) if rows is None else rows
    arrays = scale_crf_arrays(CRFArrays.of(predictor.model.crf_params()), temperature)
    labels = predictor.tags.labels
    # Only utterances with a predicted span, in chunks of similar length: the forward-backward
    # pass costs as much on padding as on tokens.
    todo = [n for n in picked.tolist() if any(labels[k] != "O" for k in outputs.paths[n])]
    todo.sort(key=lambda n: len(outputs.paths[n]))
    found: dict[int, list[tuple[float, float]]] = {}
    for i in range(0, len(todo), _CHUNK):
        chunk = todo[i : i + _CHUNK]
        longest = len(outputs.paths[chunk[-1]])
        em = outputs.emissions[chunk, :longest] / temperature
        alpha, beta, log_z = forward_backward_arrays(em, outputs.mask[chunk, :longest], arrays)
        for b, n in enumerate(chunk):
            gold = {(s.slot, s.first, s.last) for s in bio_spans(gold_tags[n])}
            found[n] = [
                (p, float((span.slot, span.first, span.last) in gold))
                for span, p in span_confidences(
                    predictor.tags, outputs.paths[n], em[b], alpha[b], beta[b],
                    float(log_z[b]), arrays,
                )
            ]  # fmt: skip
    pairs = [pair for n in picked.tolist() for pair in found.get(n, [])]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    conf, right = zip(*pairs, strict=True)
    return np.array(conf), np.array(right)


def fit_span_temperature(
    predictor: SlotTaggerPredictor,
    outputs: TaggerOutputs,
    gold_tags: Sequence[Sequence[str]],
    rows: np.ndarray | None = None,
) -> float:
    """The span temperature (see the module's docstring); 1.0 when no span is predicted."""
    if not span_outcomes(predictor, outputs, gold_tags, 1.0, rows)[0].size:
        return 1.0
    return fit_scale(lambda t: binary_nll(*span_outcomes(predictor, outputs, gold_tags, t, rows)))


def fit_intent_temperature(logits: np.ndarray, targets: IntentTargets) -> float:
    """The intent temperature; 1.0 without intents."""
    if not logits.size:
        return 1.0
    return fit_scale(lambda t: intent_nll(logits, targets, t))


def halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into two halves, for cross-fitting."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


@dataclass(frozen=True)
class TaggerCalibration:
    """Scores (``intent_ece``...) and the outcomes the reliability diagrams draw."""

    scores: dict[str, float]
    intent: dict[str, tuple[np.ndarray, np.ndarray]]  # "uncalibrated"/"calibrated" -> outcomes
    spans: dict[str, tuple[np.ndarray, np.ndarray]]


def tagger_calibration(
    predictor: SlotTaggerPredictor,
    data: TaggingSet,
    temperatures: Temperatures | None = None,
    crossfit: bool = True,
) -> TaggerCalibration:
    """ECE of ``data`` before scaling (``*_uncalibrated``), with ``temperatures`` (default:
    the predictor's), and, with ``crossfit``, with temperatures fitted on one random half of
    ``data`` and measured on the other, both ways (``*_crossfit``: an honest figure when
    ``data`` is the split the temperatures were fitted on). Keys: ``intent_ece*`` (with
    intents), ``span_ece*``, ``intent_temperature``, ``span_temperature``."""
    temps = temperatures or predictor.temperatures
    outputs = tagger_outputs(predictor, data)
    labels = predictor.intents.labels
    scores: dict[str, float] = {}
    intent: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    spans: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    parts = halves(len(data))
    if labels and data.has_intents:
        targets = intent_targets(labels, data.intents, predictor.model.config.multi_label)
        logits = outputs.intent_logits
        for name, t in (("uncalibrated", 1.0), ("calibrated", temps.intent)):
            intent[name] = intent_outcomes(logits, targets, labels, t)
        scores["intent_ece_uncalibrated"] = expected_calibration_error(*intent["uncalibrated"])
        scores["intent_ece"] = expected_calibration_error(*intent["calibrated"])
        if crossfit:
            conf, right = [], []
            for fit_on, measure_on in (parts, parts[::-1]):
                t = fit_intent_temperature(logits[fit_on], _rows(targets, fit_on))
                c, r = intent_outcomes(logits[measure_on], _rows(targets, measure_on), labels, t)
                conf.append(c)
                right.append(r)
            scores["intent_ece_crossfit"] = expected_calibration_error(
                np.concatenate(conf), np.concatenate(right)
            )
        scores["intent_temperature"] = temps.intent
    for name, t in (("uncalibrated", 1.0), ("calibrated", temps.spans)):
        spans[name] = span_outcomes(predictor, outputs, data.tags, t)
    scores["span_ece_uncalibrated"] = expected_calibration_error(*spans["uncalibrated"])
    scores["span_ece"] = expected_calibration_error(*spans["calibrated"])
    if crossfit:
        conf, right = [], []
        for fit_on, measure_on in (parts, parts[::-1]):
            t = fit_span_temperature(predictor, outputs, data.tags, fit_on)
            c, r = span_outcomes(predictor, outputs, data.tags, t, measure_on)
            conf.append(c)
            right.append(r)
        scores["span_ece_crossfit"] = expected_calibration_error(
            np.concatenate(conf), np.concatenate(right)
        )
    scores["span_temperature"] = temps.spans
    return TaggerCalibration(scores, intent, spans)


def _rows(targets: IntentTargets, rows: np.ndarray) -> IntentTargets:
    return IntentTargets(
        targets.ids[rows],
        targets.multi_hot[rows],
        [targets.gold[int(i)] for i in rows],
        targets.multi_label,
    )


def fit_tagger_temperatures(predictor: SlotTaggerPredictor, data: TaggingSet) -> Temperatures:
    """Intent and span temperatures fitted on ``data`` (the valid split)."""
    outputs = tagger_outputs(predictor, data)
    labels = predictor.intents.labels
    intent = 1.0
    if labels and data.has_intents:
        targets = intent_targets(labels, data.intents, predictor.model.config.multi_label)
        intent = fit_intent_temperature(outputs.intent_logits, targets)
    return Temperatures(intent=intent, spans=fit_span_temperature(predictor, outputs, data.tags))


def sentiment_logits(
    predictor: SentimentPredictor, sentences: Sequence[Sequence[str]]
) -> np.ndarray:
    """Unscaled label logits ``(n, num_labels)``, in batches."""
    out = []
    for i in range(0, len(sentences), EVAL_BATCH):
        batch = on_device(
            encode_tokens(sentences[i : i + EVAL_BATCH], predictor.words, predictor.chars),
            predictor.model,
        )
        with torch.inference_mode():
            out.append(predictor.model(batch).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(predictor.labels)))


def _label_ids(predictor: SentimentPredictor, gold: Sequence[str]) -> np.ndarray:
    return np.array([predictor.labels.index_of.get(y, -1) for y in gold])


def fit_sentiment_temperature(
    predictor: SentimentPredictor, sentences: Sequence[Sequence[str]], gold: Sequence[str]
) -> Temperatures:
    """The label temperature fitted on ``sentences`` (the valid split)."""
    logits, ids = sentiment_logits(predictor, sentences), _label_ids(predictor, gold)
    return Temperatures(labels=_fit_labels(logits, ids))


def _fit_labels(logits: np.ndarray, ids: np.ndarray) -> float:
    if not logits.size:
        return 1.0
    return fit_scale(lambda t: softmax_nll(logits, ids, t))


def _label_outcomes(logits: np.ndarray, ids: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    probs = softmax(logits / t)
    return probs.max(axis=1), (probs.argmax(axis=1) == ids).astype(np.float64)


def sentiment_calibration(
    predictor: SentimentPredictor,
    sentences: Sequence[Sequence[str]],
    gold: Sequence[str],
    crossfit: bool = True,
) -> tuple[dict[str, float], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``ece``, ``ece_uncalibrated``, ``ece_crossfit`` and ``temperature`` (as
    :func:`tagger_calibration`), and the outcomes before and after scaling."""
    logits, ids = sentiment_logits(predictor, sentences), _label_ids(predictor, gold)
    t_fit = predictor.temperatures.labels
    outcomes = {
        "uncalibrated": _label_outcomes(logits, ids, 1.0),
        "calibrated": _label_outcomes(logits, ids, t_fit),
    }
    scores: dict[str, Any] = {
        "ece_uncalibrated": expected_calibration_error(*outcomes["uncalibrated"]),
        "ece": expected_calibration_error(*outcomes["calibrated"]),
    }
    if crossfit:
        conf, right = [], []
        parts = halves(len(ids))
        for fit_on, measure_on in (parts, parts[::-1]):
            t = _fit_labels(logits[fit_on], ids[fit_on])
            c, r = _label_outcomes(logits[measure_on], ids[measure_on], t)
            conf.append(c)
            right.append(r)
        scores["ece_crossfit"] = expected_calibration_error(
            np.concatenate(conf), np.concatenate(right)
        )
    scores["temperature"] = t_fit
    return scores, outcomes


def calibrate_tagger(predictor: SlotTaggerPredictor, valid: TaggingSet) -> dict[str, float]:
    """Fit the predictor's temperatures on ``valid`` and set them (a multi-label model's
    intent threshold is tuned again, on the scaled probabilities); the valid ECEs before and
    after, for the manifest's metrics."""
    predictor.temperatures = fit_tagger_temperatures(predictor, valid)
    if predictor.model.config.multi_label and len(predictor.intents):
        tune_intent_threshold(predictor, valid)
    return tagger_calibration(predictor, valid, crossfit=False).scores


def calibrate_sentiment(predictor: SentimentPredictor, valid: TextDataset) -> dict[str, float]:
    """Fit the predictor's label temperature on ``valid`` and set it; the valid ECEs."""
    sentences = sentiment_inputs(valid.texts, predictor)
    predictor.temperatures = fit_sentiment_temperature(predictor, sentences, valid.labels)
    return sentiment_calibration(predictor, sentences, valid.labels, crossfit=False)[0]


def calibrate(
    predictor: SlotTaggerPredictor | SentimentPredictor, valid: TaggingSet | TextDataset
) -> dict[str, float]:
    """:func:`calibrate_tagger` or :func:`calibrate_sentiment`, as the predictor is."""
    if isinstance(predictor, SlotTaggerPredictor):
        if not isinstance(valid, TaggingSet):
            raise TypeError("a tagger is calibrated on a TaggingSet")
        return calibrate_tagger(predictor, valid)
    if not isinstance(valid, TextDataset):
        raise TypeError("a sentiment model is calibrated on a TextDataset")
    return calibrate_sentiment(predictor, valid)
