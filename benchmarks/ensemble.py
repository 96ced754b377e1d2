"""Would averaging taggers help? Score every subset of some trained taggers as one model.

A subset's potentials are the means of its members' emissions, CRF transitions (with the BIO
constraints) and intent log-probabilities: a product of experts, decoded by the same
constrained Viterbi as one tagger. The members must share the tag and intent sets, as taggers
trained on the same data with different seeds do. Each member is also scored alone, so the
table shows what the average adds.

    python -m benchmarks.ensemble --dataset atis --artifacts A13 A1 A2 A3 --sizes 1 2 3
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmarks.common import (
    DATASETS,
    add_common_args,
    format_table,
    load_split,
    log,
    resolve_data_dir,
    write_results,
)
from models.artifact import load_artifact
from models.crf import CRFParams, viterbi_decode
from models.predictor import SlotTaggerPredictor
from training.data import SlotDataset
from training.metrics import slot_metrics

NAME = "ensemble"


def member_outputs(
    predictor: SlotTaggerPredictor, data: SlotDataset
) -> tuple[Tensor, Tensor, CRFParams, Tensor]:
    """Emissions, intent log-probabilities, constrained CRF scores and mask on ``data``."""
    batch = predictor.encode(data.tokens)
    with torch.inference_mode():
        emissions, intent_logits = predictor.model(batch)
    return emissions, intent_logits.log_softmax(-1), predictor.model.crf_params(), batch.mask


def score_average(
    members: Sequence[tuple[Tensor, Tensor, CRFParams, Tensor]],
    tags: Sequence[str],
    intents: Sequence[str],
    data: SlotDataset,
) -> dict[str, Any]:
    """Slot and intent metrics of the members' averaged potentials."""
    emissions = torch.stack([m[0] for m in members]).mean(0)
    intent_scores = torch.stack([m[1] for m in members]).mean(0)
    params = CRFParams(
        *(
            torch.stack([getattr(m[2], field) for m in members]).mean(0)
            for field in ("start", "transitions", "end")
        )
    )
    paths = viterbi_decode(emissions, members[0][3], params)
    pred_tags = [[tags[t] for t in path] for path in paths]
    pred_intents = [intents[i] for i in intent_scores.argmax(-1).tolist()]
    return slot_metrics(data.tags, pred_tags, data.intents, pred_intents)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.ensemble",
        description="Valid slot F1, intent accuracy and exact match of every subset of the "
        "given taggers, their potentials averaged.",
    )
    add_common_args(p)
    p.add_argument("--dataset", choices=DATASETS, default="atis")
    p.add_argument("--split", default="valid", help="split folder under the data set")
    p.add_argument(
        "--artifacts", type=Path, nargs="+", required=True, metavar="DIR", help="tagger artifacts"
    )
    p.add_argument(
        "--sizes", type=int, nargs="+", default=[1, 2], help="subset sizes (default: 1 2)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Score each subset; print the table and write JSON."""
    args = build_parser().parse_args(argv)
    started = datetime.now(UTC)
    data = load_split(resolve_data_dir(args.data_dir), args.dataset, args.split)
    predictors = []
    for path in args.artifacts:
        predictor = load_artifact(path).predictor
        if not isinstance(predictor, SlotTaggerPredictor):
            raise SystemExit(f"error: {path} is not a slot tagger")
        predictors.append(predictor)
    first = predictors[0]
    for path, other in zip(args.artifacts[1:], predictors[1:], strict=True):
        if other.tags.labels != first.tags.labels or other.intents.labels != first.intents.labels:
            raise SystemExit(f"error: {path} has other tags or intents than {args.artifacts[0]}")
    log(f"{args.dataset}/{args.split}: {len(data)} utterances, {len(predictors)} taggers")
    outputs = [member_outputs(p, data) for p in predictors]
    results = []
    for size in args.sizes:
        for subset in itertools.combinations(range(len(predictors)), size):
            metrics = score_average(
                [outputs[i] for i in subset], first.tags.labels, first.intents.labels, data
            )
            results.append(
                {
                    "members": [str(args.artifacts[i]) for i in subset],
                    "size": size,
                    **{k: metrics[k] for k in ("slot_f1", "intent_accuracy", "exact_match")},
                }
            )
    headers = ["members", "slot_f1", "intent_acc", "exact_match"]
    rows = [
        [
            " + ".join(Path(m).name for m in r["members"]),
            r["slot_f1"],
            r["intent_accuracy"],
            r["exact_match"],
        ]
        for r in results
    ]
    print(format_table(headers, rows))
    path = write_results(NAME, args, started, {"dataset": args.dataset, "results": results})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
