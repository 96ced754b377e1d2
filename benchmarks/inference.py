"""In-process CPU cost of a parse, per engine (``SLOTFILL_ENGINE``), against issue 18's targets.

Latency: one utterance per call (batch 1): the tagger's ``parse`` (tokenise, encode, network,
intent ranking, constrained Viterbi, forward-backward span confidences) plus, with
``--sentiment``, the sentiment model's ``classify``, as ``/v1/parse`` runs them; p50/p90/p99.
Throughput: the tagger's ``parse`` over batches of 64. Every figure is CPU time of the calling
thread (``time.thread_time``) on one thread (torch and NumPy's BLAS), so neighbours on a shared
machine inflate it less than wall time; the load average is recorded. The engines alternate
utterance by utterance (latency) and pass by pass (throughput), so both see the same load.

Each engine's figures are printed beside the targets with PASS/FAIL; engines other than torch
are also checked against torch on the valid split (same tags on >= 99.5% of utterances, slot
F1 and intent accuracy within 0.002).

The numpy engine runs its compiled kernels (``--kernels native``, the server's default where
they are built), its NumPy loops (``--kernels numpy``), or both, alternating, as two rows.

    python -m benchmarks.inference --artifact DIR [--sentiment DIR] [--split DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from benchmarks.common import (
    add_common_args,
    format_table,
    latency_summary,
    limited_threads,
    load_split,
    log,
    resolve_data_dir,
    serving_rule,
    texts_of,
    write_results,
)
from models import native
from models.artifact import load_artifact
from models.engine import ENGINES, for_engine
from models.native import KERNELS, Kernels
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from training.data import read_slot_folder

NAME = "inference"
# Issue 18: one parse (tagger + intent + marginals + sentiment) on one thread; batched tagger.
TARGETS = {"p50_ms": 1.0, "p99_ms": 2.5, "batched_per_second": 3000.0}


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.inference",
        description="CPU ms per parse (batch 1) and batched utterances/s, per engine, with "
        "issue 18's targets.",
    )
    add_common_args(p)
    p.add_argument("--artifact", type=Path, required=True, metavar="DIR", help="slot artifact")
    p.add_argument(
        "--sentiment", type=Path, default=None, metavar="DIR", help="sentiment artifact, timed "
        "with each parse as /v1/parse runs it",
    )  # fmt: skip
    p.add_argument(
        "--split",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder with seq.in/seq.out/label (default: <data dir>/atis/valid)",
    )
    p.add_argument(
        "--engines", nargs="+", choices=ENGINES, default=list(ENGINES), help="default: all"
    )
    p.add_argument(
        "--kernels",
        nargs="+",
        choices=KERNELS,
        default=["native"],
        help="what runs the numpy engine's loops (SLOTFILL_KERNELS): its compiled kernels, its "
        "NumPy loops, or both, alternating (default: native)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
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


def cpu_seconds(fn: Callable[[str, str], object], engine: str, text: str) -> float:
    """CPU seconds of the calling thread spent in ``fn(engine, text)``."""
    start = time.thread_time()
    fn(engine, text)
    return time.thread_time() - start


def batched_pass(tagger: SlotTaggerPredictor, batches: Sequence[Sequence[str]]) -> float:
    """CPU seconds of parsing every batch once."""
    total = 0.0
    for batch in batches:
        start = time.thread_time()
        tagger.parse(list(batch))
        total += time.thread_time() - start
    return total


def verdict(ok: bool) -> str:
    """The word printed beside a figure and its target."""
    return "PASS" if ok else "FAIL"


def check_against_torch(
    floats: SlotTaggerPredictor, other: SlotTaggerPredictor, split: Any
) -> dict[str, Any]:
    """The serving rule: same tags on >= 99.5% of the split's utterances, slot F1 and intent
    accuracy within 0.002 of the torch model's."""
    same, fs, os_, ok = serving_rule(floats, other, split)
    return {
        "same_tags": same,
        "slot_f1_torch": fs["slot_f1"],
        "slot_f1": os_["slot_f1"],
        "intent_accuracy_torch": fs["intent_accuracy"],
        "intent_accuracy": os_["intent_accuracy"],
        "verdict": verdict(ok),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and write the table and JSON."""
    args = build_parser().parse_args(argv)
    if args.quick:
        args.repeats = 1
        args.warmup = min(args.warmup, 10)
        if args.latency_n is None:
            args.latency_n = 100
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    artifact = load_artifact(args.artifact)
    tagger = artifact.predictor
    if not isinstance(tagger, SlotTaggerPredictor):
        raise SystemExit(f"error: {args.artifact} is a {artifact.task} artifact, not a slot tagger")
    sentiment = load_artifact(args.sentiment).predictor if args.sentiment else None
    if sentiment is not None and not isinstance(sentiment, SentimentPredictor):
        raise SystemExit(f"error: {args.sentiment} is not a sentiment model")
    if args.split is not None:
        data = read_slot_folder(args.split)
    else:
        data = load_split(resolve_data_dir(args.data_dir), "atis", "valid")
    texts = texts_of(data)
    sample = texts[: args.latency_n] if args.latency_n else texts
    log(f"{len(texts)} utterances from {data.source}; latency over {len(sample)}")
    # Each engine, the numpy one once per kernel choice: (label, engine, kernels).
    kernels = list(dict.fromkeys(args.kernels))
    if "native" in kernels and not native.available():
        raise SystemExit("error: --kernels native: the compiled kernels are not built")
    variants = [
        (f"{e}+{k}" if e == "numpy" and len(kernels) > 1 else e, e, k if e == "numpy" else "numpy")
        for e in dict.fromkeys(args.engines)
        for k in (kernels if e == "numpy" else kernels[:1])
    ]
    engines = [label for label, _, _ in variants]
    taggers = {label: for_engine(tagger, e) for label, e, _ in variants}
    feelings = {label: for_engine(sentiment, e) if sentiment else None for label, e, _ in variants}
    chosen: dict[str, Kernels] = {label: cast(Kernels, k) for label, _, k in variants}

    def one(engine: str, text: str) -> None:
        native.select(chosen[engine])
        taggers[engine].parse([text])
        feeling = feelings[engine]
        if feeling is not None:
            feeling.classify([text])

    batches = [texts[i : i + args.batch_size] for i in range(0, len(texts), args.batch_size)]
    latency: dict[str, list[float]] = {e: [] for e in engines}
    passes: dict[str, list[float]] = {e: [] for e in engines}
    checks: dict[str, dict[str, Any]] = {}
    with limited_threads(args.threads):
        for engine in engines:
            for text in (texts * (args.warmup // max(len(texts), 1) + 1))[: args.warmup]:
                one(engine, text)
            taggers[engine].parse(batches[0])
        gc.collect()
        gc.disable()  # a collection would land on whichever call happens to allocate
        try:
            for text in sample:
                for engine in engines:
                    latency[engine].append(cpu_seconds(one, engine, text))
            for _ in range(max(args.repeats, 1)):
                for engine in engines:
                    native.select(chosen[engine])
                    passes[engine].append(batched_pass(taggers[engine], batches))
        finally:
            gc.enable()
        for engine in engines:
            if engine != "torch":
                native.select(chosen[engine])
                checks[engine] = check_against_torch(tagger, taggers[engine], data)
    load_after = os.getloadavg()
    results: dict[str, Any] = {}
    rows = []
    for engine in engines:
        lat = latency_summary(latency[engine])
        rate = len(texts) / min(passes[engine])
        verdicts = {
            "p50_ms": verdict(lat["p50_ms"] <= TARGETS["p50_ms"]),
            "p99_ms": verdict(lat["p99_ms"] <= TARGETS["p99_ms"]),
            "batched_per_second": verdict(rate >= TARGETS["batched_per_second"]),
        }
        results[engine] = {
            "latency_batch1_cpu": lat,
            "batched_per_second_cpu": rate,
            "batched_cpu_seconds_per_pass": passes[engine],
            "verdicts": verdicts,
            "against_torch": checks.get(engine),
        }
        rows.append(
            [
                engine,
                lat["n"],
                f"{lat['p50_ms']:.3f} {verdicts['p50_ms']}",
                f"{lat['p90_ms']:.3f}",
                f"{lat['p99_ms']:.3f} {verdicts['p99_ms']}",
                f"{rate:.0f} {verdicts['batched_per_second']}",
            ]
        )
    what = "tagger parse + sentiment" if sentiment else "tagger parse"
    print(f"CPU time of one thread; {what} per utterance; batches of {args.batch_size} (tagger)")
    print(
        format_table(
            ["engine", "n", "p50 ms", "p90 ms", "p99 ms", f"utt/s@{args.batch_size}"],
            [*rows, ["target", "", "<= 1.0", "", "<= 2.5", ">= 3000"]],
        )
    )
    for engine, check in checks.items():
        print(
            f"{engine} against torch on {data.source}: same tags {100 * check['same_tags']:.1f}% "
            f"(>= 99.5%), slot F1 {check['slot_f1']:.4f} vs {check['slot_f1_torch']:.4f}, "
            f"intent accuracy {check['intent_accuracy']:.4f} vs "
            f"{check['intent_accuracy_torch']:.4f} (within 0.002): {check['verdict']}"
        )
    print(f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    tokens = [len(t) for t in data.tokens]
    payload = {
        "artifact": str(args.artifact),
        "sentiment": str(args.sentiment) if args.sentiment else None,
        "data": data.source,
        "clock": "time.thread_time (CPU time of the calling thread)",
        "targets": TARGETS,
        "results": results,
        "threads": args.threads,
        "kernels": chosen,
        "utterances": len(texts),
        "mean_tokens": sum(tokens) / len(tokens),
        "model": artifact.manifest.model_config,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "notes": [
            f"latency: {what}, batch 1, after {args.warmup} warm-up calls per engine; the "
            "engines alternate utterance by utterance",
            f"throughput: tagger parse over all utterances in batches of {args.batch_size}, "
            f"best of {args.repeats} passes per engine, passes alternating",
        ],
    }
    path = write_results(NAME, args, started, payload)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
