"""How far a fine-tuned pretrained encoder gets on the intents of ``slotfill cv slots``'s folds.

A probe for issue 19's SNIPS target (intent accuracy >= 0.990 over 5 folds): the BiLSTM
tagger's errors are ``SearchCreativeWork`` against ``SearchScreeningEvent``, which word
evidence from the training set alone does not separate. This fine-tunes the sentiment
trainer's encoder classifier (``--pretrained-encoder``) on the utterances' intents: a BIO
folder's ``seq.in``/``label`` become a ``text<TAB>label`` folder, and ``slotfill cv
sentiment``'s code scores it. The folds are the tagger's: both deal each class round-robin over
the same pooled order (train, then valid) with the same fold seed. Intents only, no slots::

    .venv/bin/python -m benchmarks.intent_encoder_probe --data ../shared/data/snips \\
        --encoder ENCODER_DIR --seeds 13 --only-folds 2 --out probe.json

``--config '{"lr": 1e-4, "epochs": 5}'`` sets fine-tuning settings over the encoder's defaults.
``--pair`` scores ``slotfill cv slots --intent-encoder``'s own fold (the default tagger, its
encoder blended in) with a second encoder of seed + 1000 in the first's place, and with the mean
of the two encoders' calibrated probabilities: whether averaging encoders is worth a second pass.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from benchmarks.common import fold_taggers
from models.artifact import file_sha256
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from training.config import SentimentTrainConfig, SlotTrainConfig
from training.cv import cross_validate, subset
from training.intent_encoder import fit_intent_encoder
from training.tagging import TaggingSet
from training.tagging_eval import evaluate_tagging

# Weights of the encoder's probabilities in a blend with the tagger head's (0: the head alone).
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
# --pair's second encoder: the fold's seed plus this.
SECOND_SEED = 1000


def write_intent_tsv(bio: Path, out: Path) -> int:
    """``bio``'s train and valid splits as ``out/{train,valid}.tsv`` (text, intent); rows."""
    rows = 0
    for split in ("train", "valid"):
        texts = (bio / split / "seq.in").read_text(encoding="utf-8").splitlines()
        labels = (bio / split / "label").read_text(encoding="utf-8").splitlines()
        pairs = zip(texts, labels, strict=True)  # a count mismatch is an error
        lines = ["text\tlabel", *(f"{t.strip()}\t{x.strip()}" for t, x in pairs)]
        (out / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows += len(texts)
    return rows


def blend_probe(
    data: Path, encoder: Path, seed: int, folds: int, only: list[int] | None, threads: int
) -> dict[str, Any]:
    """Per fold: the default tagger and the fine-tuned encoder, trained on the same fold
    (``slotfill cv slots --intent-encoder``'s training), and the intent accuracy of each blend
    ``w * encoder + (1 - w) * head`` of their calibrated probabilities on the held-out fold."""
    # The head as the defaults of the blend probe's runs had it: read apart from the slots.
    config = SlotTrainConfig(seed=seed, threads=threads, device="cpu", intent_slot_fit=0)
    runs = []
    out_of_fold: dict[float, dict[int, str]] = {w: {} for w in BLENDS}
    gold_of: dict[int, str] = {}
    started = time.process_time()
    for fold in fold_taggers(data, config, folds, only):
        pooled, tagger = fold.pooled, fold.tagger
        cfg = config.model_copy(update={"intent_encoder": str(encoder)})
        classifier = fit_intent_encoder(fold.train, fold.stop, cfg)[0].predictor
        assert isinstance(classifier, SentimentPredictor)
        test = [pooled.tokens[i] for i in fold.test]
        head = tagger.tag_probs(test)[1]
        tagger.attach_intent_classifier(classifier)
        enc = tagger._classifier_probs([" ".join(t) for t in test])
        gold = [fold.labels[i] for i in fold.test]
        gold_of.update(zip(fold.test, gold, strict=True))
        row: dict[str, Any] = {"seed": seed, "fold": fold.number, "test": len(gold)}
        for w in BLENDS:
            pred = [tagger.intents.labels[j] for j in np.argmax(w * enc + (1 - w) * head, axis=1)]
            row[f"accuracy_w{w}"] = sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)
            for i, p in zip(fold.test, pred, strict=True):
                out_of_fold[w][i] = p
        row["cpu_seconds"] = round(time.process_time() - started, 1)
        print(json.dumps(row), file=sys.stderr, flush=True)
        runs.append(row)
        started = time.process_time()
    pooled_acc = {
        f"w{w}": sum(out_of_fold[w][i] == g for i, g in gold_of.items()) / len(gold_of)
        for w in BLENDS
    }
    return {"data": data.name, "seed": seed, "runs": runs, "pooled_accuracy": pooled_acc}


def pair_probe(
    data: Path, config: SlotTrainConfig, folds: int, only: list[int] | None
) -> dict[str, Any]:
    """Per fold, ``slotfill cv slots``'s run of ``config`` (a tagger with an
    ``intent_encoder``, blended as served), then the same with a second encoder (seed +
    :data:`SECOND_SEED`) and with the mean of both encoders' calibrated probabilities in the
    encoder's share: utterances right of each (``first``, ``second``, ``mean``)."""
    seed = config.seed
    second = config.model_copy(update={"seed": seed + SECOND_SEED})
    runs: list[dict[str, Any]] = []
    started = time.process_time()
    for fold in fold_taggers(data, config, folds, only):
        tagger, test = fold.tagger, subset(fold.pooled, fold.test, "cv test")
        gold = [fold.labels[i] for i in fold.test]
        encoders = []
        for cfg in (config, second):
            classifier = fit_intent_encoder(fold.train, fold.stop, cfg)[0].predictor
            assert isinstance(classifier, SentimentPredictor)
            encoders.append(classifier)
        right = {}
        for name, classifier in zip(("second", "first"), encoders[::-1], strict=True):
            tagger.attach_intent_classifier(classifier, config.intent_encoder_weight)
            right[name] = _right(tagger, test, gold)
        # The first encoder stays attached (its label columns); the mean replaces its reading.
        tagger._classifier_probs = _mean_reading(tagger, encoders)  # type: ignore[method-assign,assignment]
        right["mean"] = _right(tagger, test, gold)
        row: dict[str, Any] = {"seed": seed, "fold": fold.number, "test": len(gold), "right": right}
        row["cpu_seconds"] = round(time.process_time() - started, 1)
        print(json.dumps(row), file=sys.stderr, flush=True)
        runs.append(row)
        started = time.process_time()
    total = {k: sum(r["right"][k] for r in runs) for k in ("first", "second", "mean")}
    return {
        "data": data.name,
        "seed": seed,
        "second_seed": seed + SECOND_SEED,
        "runs": runs,
        "right": total,
        "examples": sum(r["test"] for r in runs),
    }


def _mean_reading(
    tagger: SlotTaggerPredictor, encoders: list[SentimentPredictor]
) -> Callable[[Sequence[str]], np.ndarray]:
    """The mean of ``encoders``' calibrated probabilities, each read as ``tagger`` reads its
    attached classifier (the same intents: both were trained on the fold's training part)."""
    own = tagger._classifier_probs

    def mean_probs(texts: Sequence[str]) -> np.ndarray:
        probs = []
        for classifier in encoders:
            tagger.intent_classifier = classifier
            probs.append(own(texts))
        tagger.intent_classifier = encoders[0]
        mean: np.ndarray = np.stack(probs).mean(axis=0)
        return mean

    return mean_probs


def _right(tagger: SlotTaggerPredictor, test: TaggingSet, gold: list[str]) -> int:
    """How many of ``test``'s utterances ``tagger`` gives their ``gold`` intent, as cv scores."""
    predicted = evaluate_tagging(tagger, test)[1]["intents"]
    return sum(p[0] == g for p, g in zip(predicted, gold, strict=True))


def _tagger_probe(args: argparse.Namespace) -> dict[str, Any]:
    """``--pair``'s or ``--blend``'s result (each trains the tagger on the folds: one seed)."""
    if args.pair:
        config = SlotTrainConfig(
            seed=args.seeds[0], threads=args.threads, device="cpu", intent_encoder=str(args.encoder)
        )
        return pair_probe(args.data, config, args.folds, args.only_folds)
    return blend_probe(
        args.data, args.encoder, args.seeds[0], args.folds, args.only_folds, args.threads
    )


def json_object(text: str) -> dict[str, Any]:
    """``--config``'s value: a JSON object, or a usage error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("a JSON object of settings, such as '{\"lr\": 1e-4}'")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="BIO folder: train/, valid/")
    parser.add_argument("--encoder", type=Path, required=True, help="pretrained encoder folder")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[13])
    parser.add_argument("--only-folds", type=int, nargs="+", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="JSON result")
    parser.add_argument(
        "--config",
        type=json_object,
        default={},
        help="fine-tuning settings over the encoder's defaults, as JSON (e.g. '{\"lr\": 1e-4, "
        '"epochs": 5}\'); without --blend only',
    )
    parser.add_argument(
        "--blend",
        action="store_true",
        help="also train the default tagger on each fold and score blends of its intent "
        "head with the encoder (one seed: the first of --seeds)",
    )
    parser.add_argument(
        "--pair",
        action="store_true",
        help="score slotfill cv slots --intent-encoder's fold with a second encoder (seed + "
        f"{SECOND_SEED}) and with the two encoders' mean (one seed: the first of --seeds)",
    )
    args = parser.parse_args()
    if (args.blend or args.pair) and args.config:
        parser.error(
            "--config applies to the encoder's own cross-validation, not to --blend or --pair"
        )
    if args.blend and args.pair:
        parser.error("--blend and --pair are two probes: one at a time")
    if args.blend or args.pair:
        result = _tagger_probe(args)
        weights = args.encoder / "model.safetensors"
        result["probe"] = {"encoder_weights_sha256": file_sha256(weights)}
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["right" if args.pair else "pooled_accuracy"]))
        return
    # --config may also set threads or device; the encoder is --encoder's.
    settings = {"threads": args.threads, "device": "cpu", **args.config}
    settings["pretrained_encoder"] = str(args.encoder)
    try:
        config = SentimentTrainConfig(**settings)
    except ValidationError as err:
        parser.error(f"--config: {err}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = write_intent_tsv(args.data, Path(tmp))
        print(f"{rows} utterances pooled from {args.data}", file=sys.stderr, flush=True)
        result = cross_validate(
            "sentiment",
            Path(tmp),
            config,
            folds=args.folds,
            seeds=args.seeds,
            only_folds=args.only_folds,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    weights = args.encoder / "model.safetensors"
    result["data"] = f"{args.data.name} (seq.in and label as text<TAB>label)"  # not the tmp dir
    result["probe"] = {
        "data": args.data.name,
        "encoder_weights_sha256": file_sha256(weights),
        "overrides": args.config,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"]))


if __name__ == "__main__":
    main()
