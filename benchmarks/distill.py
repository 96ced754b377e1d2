"""Distilling a fine-tuned encoder into the sentiment LSTM (issue 19): valid macro-F1 per seed.

Trains the LSTM with its defaults ("lstm") and, for each variant (config overrides as JSON),
distilled from ``--teacher`` (a sentiment artifact, e.g. all-MiniLM-L6-v2 fine-tuned with
``slotfill train sentiment --pretrained-encoder``), on the data set's train split,
early-stopping on valid, for every seed; prints each run, the medians and issue 19's target
(airline valid macro-F1 >= 0.80) with a verdict, and writes JSON. One process, so the
teacher reads each text once (training.distill.Teacher keeps its logits):

    python -m benchmarks.distill --data ../shared/data/airline_sentiment --teacher T \\
        --seeds 13 1 2 --variants '{}' '{"distill_weight": 1.0}'
    python -m benchmarks.distill --data DIR --teacher T --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    add_common_args,
    epoch_logger,
    format_table,
    log,
    write_results,
)
from models.predictor import SentimentPredictor
from training.config import SentimentTrainConfig
from training.data import read_tsv
from training.evaluate import evaluate_sentiment
from training.loop import fit_sentiment

TARGET = 0.80  # issue 19: the airline model's valid macro-F1


def run(
    data: Path, overrides: dict[str, Any], seed: int, threads: int, quick: bool
) -> dict[str, Any]:
    """Train one model and score it on valid (the scores the early stopping kept)."""
    train, valid = read_tsv(data / "train.tsv"), read_tsv(data / "valid.tsv")
    if quick:
        train = type(train)(train.texts[:300], train.labels[:300], train.source)
        valid = type(valid)(valid.texts[:100], valid.labels[:100], valid.source)
        overrides = {"epochs": 2, **overrides}
    config = SentimentTrainConfig(**overrides, seed=seed, threads=threads, device="cpu")
    started = time.process_time()
    # One line an epoch: a distilled run trains for half an hour, and the teacher's labelling
    # before the first epoch takes minutes more.
    report = epoch_logger(f"seed {seed}", "macro_f1")
    fit = fit_sentiment(train, valid, config, on_epoch=report, show_progress=False)
    assert isinstance(fit.predictor, SentimentPredictor)
    scores = evaluate_sentiment(fit.predictor, valid)[0]
    return {
        "seed": seed,
        "macro_f1": scores["macro_f1"],
        "accuracy": scores["accuracy"],
        "best_epoch": fit.best_epoch,
        "cpu_seconds": round(time.process_time() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.distill", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", type=Path, required=True, help="sentiment folder (TSV)")
    parser.add_argument(
        "--teacher",
        type=Path,
        nargs="+",
        required=True,
        help="teacher artifact folder (several: their probabilities averaged)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 1, 2])
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["{}"],
        metavar="JSON",
        help="config overrides of each distilled variant (default: the distillation defaults)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain LSTM")
    parser.add_argument("--threads", type=int, default=1)
    add_common_args(parser)
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    variants: dict[str, dict[str, Any]] = {} if args.no_baseline else {"lstm": {}}
    for text in args.variants:
        overrides = json.loads(text)
        variants[f"distilled {text}"] = {
            "distill_from": [str(t) for t in args.teacher],
            **overrides,
        }
    runs: list[dict[str, Any]] = []
    for name, overrides in variants.items():
        for seed in args.seeds:
            result = {"variant": name, **run(args.data, overrides, seed, args.threads, args.quick)}
            log(json.dumps(result))
            runs.append(result)
    medians = {
        name: statistics.median(r["macro_f1"] for r in runs if r["variant"] == name)
        for name in variants
    }
    rows = [
        [r["variant"], r["seed"], r["macro_f1"], r["accuracy"], r["best_epoch"], r["cpu_seconds"]]
        for r in runs
    ]
    print(format_table(["variant", "seed", "macro-F1", "accuracy", "best", "CPU s"], rows))
    print()
    verdicts = [
        [name, median, f">= {TARGET}", "PASS" if median >= TARGET else "FAIL"]
        for name, median in medians.items()
    ]
    print(format_table(["variant", "median macro-F1", "target", "verdict"], verdicts))
    payload = {
        "teachers": [str(t) for t in args.teacher],
        "runs": runs,
        "medians": medians,
        "target": TARGET,
    }
    print(f"wrote {write_results('distill', args, started, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
