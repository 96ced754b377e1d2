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

The anchor (``--anchor-crfsuite FILE``): sklearn-crfsuite's feature CRF (``benchmarks.peers``,
Snips NLU's approach) tags each utterance from raw text in the same loop, on the same clock,
utterance by utterance with the engines, and each engine's p50 is held to at most 1.5x its
p50. FILE keeps the CRF: trained where it is missing (100 L-BFGS iterations) on ATIS train, or
on the ``train`` folder beside ``--split``.

The numpy engine runs its compiled kernels (``--kernels native``, the server's default where
they are built), its NumPy loops (``--kernels numpy``), or both, alternating, as two rows; its
recurrent weights in half precision (``--recurrent float16``, the server's default) or as
stored (``float32``), or both, likewise.

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
from benchmarks.peers import crfsuite_settings, crfsuite_tags, load_crfsuite, train_crfsuite
from models import native
from models.artifact import load_artifact
from models.engine import ENGINES, for_engine
from models.native import KERNELS, RECURRENT, Kernels, Recurrent
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from training.data import TextDataset, read_slot_folder, read_tsv
from training.metrics import classification_metrics

NAME = "inference"
# Issue 18: one parse (tagger + intent + marginals + sentiment) on one thread; batched tagger.
TARGETS = {"p50_ms": 1.0, "p99_ms": 2.5, "batched_per_second": 3000.0, "anchor_ratio": 1.5}
ANCHOR = "sklearn-crfsuite"


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
    p.add_argument(
        "--recurrent",
        nargs="+",
        choices=RECURRENT,
        default=["float16"],
        help="precision of the numpy engine's recurrent weights (SLOTFILL_RECURRENT_WEIGHTS), "
        "or both, alternating (default: float16)",
    )
    p.add_argument(
        "--anchor-crfsuite",
        type=Path,
        default=None,
        metavar="FILE",
        help="time sklearn-crfsuite's tagger beside each parse (the anchor: p50 at most 1.5x "
        "its p50); FILE keeps the CRF, trained where missing on the train folder beside "
        "--split, else on ATIS train",
    )
    p.add_argument(
        "--sentiment-split",
        type=Path,
        default=None,
        metavar="TSV",
        help="with --sentiment: check each engine's labels against torch's on this text<TAB>"
        "label file (same labels on >= 99.5%%, macro-F1 within 0.002)",
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


def sentiment_check(
    reference: SentimentPredictor, candidate: SentimentPredictor, data: TextDataset
) -> dict[str, Any]:
    """The serving rule for a sentiment model: the same labels on >= 99.5% of ``data``'s
    texts, macro-F1 within 0.002 of ``reference``'s."""
    texts = data.texts
    chunks = [texts[i : i + 64] for i in range(0, len(texts), 64)]
    ref = [r.label for chunk in chunks for r in reference.classify(chunk)]
    got = [r.label for chunk in chunks for r in candidate.classify(chunk)]
    same = sum(a == b for a, b in zip(ref, got, strict=True)) / len(texts)
    ref_f1 = classification_metrics(data.labels, ref)["macro_f1"]
    got_f1 = classification_metrics(data.labels, got)["macro_f1"]
    ok = same >= 0.995 and abs(got_f1 - ref_f1) <= 0.002
    return {
        "data": data.source,
        "same_labels": same,
        "macro_f1_torch": ref_f1,
        "macro_f1": got_f1,
        "verdict": verdict(ok),
    }


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
    texts_checked = read_tsv(args.sentiment_split) if args.sentiment_split and sentiment else None
    sample = texts[: args.latency_n] if args.latency_n else texts
    log(f"{len(texts)} utterances from {data.source}; latency over {len(sample)}")
    # Each engine, the numpy one once per kernel and precision choice:
    # (label, engine, (kernels, recurrent)).
    kernels = list(dict.fromkeys(args.kernels))
    recurrent = list(dict.fromkeys(args.recurrent))
    if "native" in kernels and not native.available():
        raise SystemExit("error: --kernels native: the compiled kernels are not built")
    variants = [
        (_label(e, k, r, kernels, recurrent), e, (k, r) if e == "numpy" else ("numpy", "float32"))
        for e in dict.fromkeys(args.engines)
        for k in (kernels if e == "numpy" else kernels[:1])
        for r in (recurrent if e == "numpy" else recurrent[:1])
    ]
    engines = [label for label, _, _ in variants]
    taggers = {label: for_engine(tagger, e) for label, e, _ in variants}
    feelings = {label: for_engine(sentiment, e) if sentiment else None for label, e, _ in variants}
    chosen: dict[str, tuple[Kernels, Recurrent]] = {
        label: (cast(Kernels, k), cast(Recurrent, r)) for label, _, (k, r) in variants
    }

    crf = (
        _anchor(args.anchor_crfsuite, args.data_dir, args.split, args.quick)
        if args.anchor_crfsuite
        else None
    )

    def one(engine: str, text: str) -> None:
        if engine == ANCHOR:
            crfsuite_tags(crf, text)
            return
        native.select(*chosen[engine])
        taggers[engine].parse([text])
        feeling = feelings[engine]
        if feeling is not None:
            feeling.classify([text])

    batches = [texts[i : i + args.batch_size] for i in range(0, len(texts), args.batch_size)]
    timed = [*engines, *([ANCHOR] if crf is not None else [])]
    latency: dict[str, list[float]] = {e: [] for e in timed}
    passes: dict[str, list[float]] = {e: [] for e in engines}
    checks: dict[str, dict[str, Any]] = {}
    with limited_threads(args.threads):
        for engine in engines:
            for text in (texts * (args.warmup // max(len(texts), 1) + 1))[: args.warmup]:
                one(engine, text)
            taggers[engine].parse(batches[0])
        for text in texts[: args.warmup] if crf is not None else []:
            one(ANCHOR, text)
        gc.collect()
        gc.disable()  # a collection would land on whichever call happens to allocate
        try:
            for text in sample:
                for engine in timed:
                    latency[engine].append(cpu_seconds(one, engine, text))
            for _ in range(max(args.repeats, 1)):
                for engine in engines:
                    native.select(*chosen[engine])
                    passes[engine].append(batched_pass(taggers[engine], batches))
        finally:
            gc.enable()
        for engine in engines:
            if engine != "torch":
                native.select(*chosen[engine])
                checks[engine] = check_against_torch(tagger, taggers[engine], data)
                feeling = feelings[engine]
                if texts_checked is not None and sentiment is not None and feeling is not None:
                    checks[engine]["sentiment"] = sentiment_check(sentiment, feeling, texts_checked)
    load_after = os.getloadavg()
    results: dict[str, Any] = {}
    rows = []
    anchor = latency_summary(latency[ANCHOR]) if crf is not None else None
    for engine in engines:
        lat = latency_summary(latency[engine])
        rate = len(texts) / min(passes[engine])
        verdicts = {
            "p50_ms": verdict(lat["p50_ms"] <= TARGETS["p50_ms"]),
            "p99_ms": verdict(lat["p99_ms"] <= TARGETS["p99_ms"]),
            "batched_per_second": verdict(rate >= TARGETS["batched_per_second"]),
        }
        ratio = lat["p50_ms"] / anchor["p50_ms"] if anchor is not None else None
        if ratio is not None:
            verdicts["anchor_ratio"] = verdict(ratio <= TARGETS["anchor_ratio"])
        results[engine] = {
            "latency_batch1_cpu": lat,
            "p50_over_anchor_p50": ratio,
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
                "" if ratio is None else f"{ratio:.2f}x {verdicts['anchor_ratio']}",
            ]
        )
    if anchor is not None:
        results[ANCHOR] = {"latency_batch1_cpu": anchor, "model": str(args.anchor_crfsuite)}
        row = [ANCHOR, anchor["n"], f"{anchor['p50_ms']:.3f}", f"{anchor['p90_ms']:.3f}"]
        rows.append([*row, f"{anchor['p99_ms']:.3f}", "", "1.00x"])
    what = "tagger parse + sentiment" if sentiment else "tagger parse"
    print(f"CPU time of one thread; {what} per utterance; batches of {args.batch_size} (tagger)")
    headers = ["engine", "n", "p50 ms", "p90 ms", "p99 ms", f"utt/s@{args.batch_size}"]
    print(
        format_table(
            [*headers, f"p50 / {ANCHOR}"],
            [*rows, ["target", "", "<= 1.0", "", "<= 2.5", ">= 3000", "<= 1.5x"]],
        )
    )
    for engine, check in checks.items():
        print(
            f"{engine} against torch on {data.source}: same tags {100 * check['same_tags']:.1f}% "
            f"(>= 99.5%), slot F1 {check['slot_f1']:.4f} vs {check['slot_f1_torch']:.4f}, "
            f"intent accuracy {check['intent_accuracy']:.4f} vs "
            f"{check['intent_accuracy_torch']:.4f} (within 0.002): {check['verdict']}"
        )
        if "sentiment" in check:
            sc = check["sentiment"]
            print(
                f"{engine} sentiment against torch on {sc['data']}: same labels "
                f"{100 * sc['same_labels']:.1f}% (>= 99.5%), macro-F1 {sc['macro_f1']:.4f} vs "
                f"{sc['macro_f1_torch']:.4f} (within 0.002): {sc['verdict']}"
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
        "kernels": {label: k for label, (k, _) in chosen.items()},
        "recurrent_weights": {label: r for label, (_, r) in chosen.items()},
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


def _anchor(model_file: Path, data_dir: Path | None, split: Path | None, quick: bool) -> Any:
    """The anchor's feature CRF from ``model_file``, trained there if missing: on the
    ``train`` folder beside ``split`` (``--split``), else on ATIS train (100 L-BFGS
    iterations; 20 with ``--quick``)."""
    if model_file.exists():
        return load_crfsuite(model_file)
    if split is not None:
        train = read_slot_folder(split.parent / "train")
    else:
        train = load_split(resolve_data_dir(data_dir), "atis", "train")
    log(f"training the {ANCHOR} anchor on {len(train)} utterances into {model_file}")
    model_file.parent.mkdir(parents=True, exist_ok=True)
    return train_crfsuite(train, crfsuite_settings(iterations=20 if quick else 100), model_file)


def _label(
    engine: str, kernels: str, recurrent: str, all_kernels: list[str], all_recurrent: list[str]
) -> str:
    """A row's name: the engine, with the kernels and the precision where several are run."""
    if engine != "numpy":
        return engine
    parts = [engine]
    parts += [kernels] if len(all_kernels) > 1 else []
    parts += [recurrent] if len(all_recurrent) > 1 else []
    return "+".join(parts)


if __name__ == "__main__":
    sys.exit(main())
