"""In-process latency and throughput of ``SlotTaggerPredictor.parse`` from raw text.

Latency: one utterance per call (batch 1) on ``--threads`` threads (default 1), over the
utterances of a valid split after a warm-up; p50/p90/p99. Throughput: batches of 64.
Everything ``parse`` does is timed: tokenisation, encoding, the network, constrained
Viterbi and the forward-backward span confidences.

    python -m benchmarks.inference --artifact DIR
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    add_common_args,
    format_table,
    latency_summary,
    limited_threads,
    load_split,
    log,
    resolve_data_dir,
    texts_of,
    throughput,
    time_each,
    write_results,
)
from models.artifact import load_artifact
from models.predictor import SlotTaggerPredictor
from training.data import read_slot_folder

NAME = "inference"


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.inference",
        description="Latency (batch 1) and throughput (batch 64) of SlotTaggerPredictor.parse.",
    )
    add_common_args(p)
    p.add_argument("--artifact", type=Path, required=True, metavar="DIR", help="slot artifact")
    p.add_argument(
        "--split",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder with seq.in (default: <data dir>/atis/valid)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--warmup", type=int, default=50, help="untimed parse calls first")
    p.add_argument("--batch-size", type=int, default=64, help="throughput batch size")
    p.add_argument("--repeats", type=int, default=5, help="throughput passes, best kept")
    p.add_argument(
        "--latency-n",
        type=int,
        default=None,
        metavar="N",
        help="time the first N utterances (default: all; --quick: 100)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and write the table and JSON."""
    args = build_parser().parse_args(argv)
    if args.quick:
        args.repeats = 1
        args.warmup = min(args.warmup, 10)
        if args.latency_n is None:
            args.latency_n = 100
    started = datetime.now(UTC)
    artifact = load_artifact(args.artifact)
    predictor = artifact.predictor
    if not isinstance(predictor, SlotTaggerPredictor):
        raise SystemExit(f"error: {args.artifact} is a {artifact.task} artifact, not a slot tagger")
    if args.split is not None:
        data = read_slot_folder(args.split)
    else:
        data = load_split(resolve_data_dir(args.data_dir), "atis", "valid")
    texts = texts_of(data)
    sample = texts[: args.latency_n] if args.latency_n else texts
    log(f"{len(texts)} utterances from {data.source}; latency over {len(sample)}")

    def one(text: str) -> object:
        return predictor.parse([text])

    def many(batch: Sequence[str]) -> object:
        return predictor.parse(list(batch))

    warm = (texts * (args.warmup // max(len(texts), 1) + 1))[: args.warmup]
    with limited_threads(args.threads):
        for text in warm:
            one(text)
        latency = latency_summary(time_each(one, sample, warmup=0))
        rate = throughput(many, texts, args.batch_size, args.repeats)
    tokens = [len(t) for t in data.tokens]
    results: dict[str, Any] = {
        "latency_batch1": latency,
        "throughput": rate,
        "threads": args.threads,
        "utterances": len(texts),
        "mean_tokens": sum(tokens) / len(tokens),
        "model": artifact.manifest.model_config,
    }
    print(
        format_table(
            ["threads", "n", "p50_ms", "p90_ms", "p99_ms", "mean_ms", f"utt/s@{args.batch_size}"],
            [
                [
                    args.threads,
                    latency["n"],
                    latency["p50_ms"],
                    latency["p90_ms"],
                    latency["p99_ms"],
                    latency["mean_ms"],
                    round(rate["per_second"], 1),
                ]
            ],
        )
    )
    notes = [
        "parse() from raw text (' '.join(gold tokens)): tokenize, encode, network, constrained "
        "Viterbi, forward-backward span confidences",
        f"latency: batch 1 after {args.warmup} warm-up calls; throughput: best of "
        f"{args.repeats} passes over all utterances in batches of {args.batch_size}",
    ]
    payload = {
        "artifact": str(args.artifact),
        "data": data.source,
        "results": results,
        "notes": notes,
    }
    path = write_results(NAME, args, started, payload)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
