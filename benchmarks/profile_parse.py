"""Where the CPU time of one parse goes: each step of ``/v1/parse`` timed on its own, one
utterance at a time, on one thread.

Steps, in the order the server runs them: tagger tokenise, encode (features), tagger network,
intent ranking, best paths + forward-backward marginals (decode_lattice), span confidences,
n-best (off by default in the API, timed apart), sentiment tokenise+encode and network, value
resolution, response building (``ParseResult.to_json``), the response model and JSON encoding
FastAPI applies, and the request-log row. ``end-to-end`` times the real calls in one go, to
check the steps add up.

Times are CPU time of this process (``time.process_time_ns``), not wall time: on a shared
machine wall time measures the neighbours. Medians per utterance over ``--n`` utterances.

    python -m benchmarks.profile_parse --tagger DIR [--sentiment DIR] [--texts FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.config import RedactionMode
from app.paths import PARSE
from app.serving.request_log.rows import parse_row
from app.serving.results import Intent, ModelRef, ParseResult
from app.serving.schemas import ParseResponse
from benchmarks.common import (
    add_common_args,
    format_table,
    limited_threads,
    load_split,
    resolve_data_dir,
    serving_rule,
    texts_of,
    write_results,
)
from models import native
from models.artifact import load_artifact
from models.crf import decode_lattice
from models.engine import ENGINES, for_engine
from models.native import KERNELS, RECURRENT
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from models.quantize import for_serving
from models.text import tagger_tokens
from models.values import make_reference
from models.values.slots import SlotValueResolver

NAME = "profile_parse"
REFERENCE = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # fixed clock: same values every run
Step = Callable[[dict[str, Any]], None]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_parse",
        description="Median CPU time per utterance of each step of a parse, one thread.",
    )
    add_common_args(p)
    p.add_argument("--tagger", type=Path, required=True, metavar="DIR", help="slot artifact")
    p.add_argument("--sentiment", type=Path, default=None, metavar="DIR", help="sentiment one")
    p.add_argument(
        "--texts",
        type=Path,
        default=None,
        metavar="FILE",
        help="utterances, one a line (default: the --dataset valid split of --data-dir)",
    )
    p.add_argument(
        "--dataset",
        choices=["atis", "snips"],
        default="atis",
        help="valid split timed (without --texts) and checked with int8 (default atis)",
    )
    p.add_argument("--n", type=int, default=500, help="utterances timed (default 500)")
    p.add_argument("--n-best", type=int, default=5, help="k of the n-best step (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument(
        "--engine",
        choices=list(ENGINES),
        default="torch",
        help="what runs both networks, as SLOTFILL_ENGINE serves them (default torch: the "
        "figures before issue 18's engine)",
    )
    p.add_argument(
        "--kernels",
        choices=list(KERNELS),
        default="native",
        help="what runs the numpy engine's loops, as SLOTFILL_KERNELS (default native: the "
        "compiled kernels where built)",
    )
    p.add_argument(
        "--recurrent",
        choices=list(RECURRENT),
        default="float16",
        help="precision of the numpy engine's recurrent weights, as SLOTFILL_RECURRENT_WEIGHTS "
        "(default float16)",
    )
    p.add_argument(
        "--quantize",
        choices=["none", "int8"],
        default="none",
        help="the tagger's weights, as SLOTFILL_QUANTIZE serves them; int8 is also checked "
        "against the float model on the --dataset valid split (without --texts)",
    )
    return p


def _int8_check(
    floats: SlotTaggerPredictor, int8: SlotTaggerPredictor, data: Path, dataset: str
) -> dict[str, Any]:
    """The serving rule: same tags on >= 99.5% of valid utterances, slot F1 and intent
    accuracy within 0.002 of the float model's."""
    same, fs, qs, verdict = serving_rule(floats, int8, load_split(data, dataset, "valid"))
    return {
        "same_tags": same,
        "slot_f1_float": fs["slot_f1"],
        "slot_f1_int8": qs["slot_f1"],
        "intent_accuracy_float": fs["intent_accuracy"],
        "intent_accuracy_int8": qs["intent_accuracy"],
        "verdict": "PASS" if verdict else "FAIL",
    }


def _steps(
    tagger: SlotTaggerPredictor,
    sentiment: SentimentPredictor | None,
    resolver: SlotValueResolver,
    k: int,
    floats: SlotTaggerPredictor | None = None,
) -> list[tuple[str, Step]]:
    """``(name, step)`` pairs; each step reads and writes the utterance's state dict.
    ``floats``: the float32 tagger of an int8 ``tagger``, timed beside it (same load)."""
    model = ModelRef("profile", "1", "profile@1", "sentiment@1" if sentiment else None)
    reference = make_reference(REFERENCE, "UTC")

    def tokenise(s: dict[str, Any]) -> None:
        s["toks"] = tagger_tokens(s["text"])

    def encode(s: dict[str, Any]) -> None:
        s["batch"] = tagger.encode_arrays([[t.text for t in s["toks"]]])

    def network(s: dict[str, Any]) -> None:
        s["emissions"], s["logits"] = tagger.outputs(s["batch"])

    def float_network(s: dict[str, Any]) -> None:
        assert floats is not None
        floats.outputs(s["batch"])

    def intents(s: dict[str, Any]) -> None:
        probs = tagger._intent_probs(s["logits"])
        s["ranking"] = tagger._rank_probs(probs, 5)[0]
        s["chosen"] = tagger._chosen(probs)[0]

    def crf_pass(s: dict[str, Any]) -> None:
        # As SlotTaggerPredictor.parse: the best paths and the calibrated marginals.
        arrays, scaled = tagger._crf_arrays(), tagger._scaled_arrays()
        spans = tagger.temperatures.spans
        lengths = [len(s["toks"])]
        paths, s["lattice"] = decode_lattice(s["emissions"], lengths, arrays, scaled, spans)
        s["path"] = paths[0]

    def confidences(s: dict[str, Any]) -> None:
        s["parse"] = tagger._results(
            [s["text"]], [s["toks"]], [s["path"]], s["lattice"], [s["ranking"]], [s["chosen"]]
        )[0]

    def nbest(s: dict[str, Any]) -> None:
        lattice = s["lattice"]
        em, log_z = lattice.emissions[0], float(lattice.log_z[0])
        tagger._hypotheses(s["text"], s["toks"], em, log_z, lattice.arrays, k)

    def sentiment_encode(s: dict[str, Any]) -> None:
        assert sentiment is not None
        s["sbatch"] = sentiment.encode(sentiment.inputs([s["text"]]))

    def sentiment_network(s: dict[str, Any]) -> None:
        assert sentiment is not None
        logits = sentiment.logits(s["sbatch"])[0].astype(np.float64)
        exp = np.exp(logits - logits.max())
        probs = (exp / exp.sum()).tolist()
        best = max(range(len(probs)), key=probs.__getitem__)
        s["feeling"] = (sentiment.labels.labels[best], probs[best])

    def values(s: dict[str, Any]) -> None:
        s["values"] = tuple(resolver.resolve(v.slot, v.value, reference) for v in s["parse"].slots)

    def response(s: dict[str, Any]) -> None:
        p = s["parse"]
        result = ParseResult(
            s["text"], p.tokens, [Intent(n, c) for n, c in p.intent_ranking], p.slots, None,
            model, None, s["values"], [Intent(n, c) for n, c in p.intents],
        )  # fmt: skip
        s["result"] = result
        s["body"] = result.to_json() | {"request_id": "0" * 32}

    def http_encode(s: dict[str, Any]) -> None:
        # What FastAPI does with a response_model: validate, dump to JSON types, json.dumps.
        dumped = ParseResponse.model_validate(s["body"]).model_dump(mode="json")
        json.dumps(dumped, ensure_ascii=False, separators=(",", ":"))

    def log_row(s: dict[str, Any]) -> None:
        parse_row("0" * 32, PARSE, None, [s["result"]], RedactionMode.full, 1.0)

    steps: list[tuple[str, Step]] = [
        ("tokenise", tokenise),
        ("encode (features)", encode),
        ("tagger network", network),
        *([("tagger network, float32 (paired)", float_network)] if floats is not None else []),
        ("intent ranking", intents),
        ("best paths + forward-backward", crf_pass),
        ("span confidences", confidences),
    ]
    if sentiment is not None:
        steps += [("sentiment encode", sentiment_encode), ("sentiment network", sentiment_network)]
    steps += [
        ("value resolution", values),
        ("response (to_json)", response),
        ("HTTP model + JSON", http_encode),
        ("request-log row", log_row),
    ]
    if k:
        steps.append((f"n-best k={k} (off by default)", nbest))
    return steps


def _end_to_end(
    tagger: SlotTaggerPredictor, sentiment: SentimentPredictor | None, resolver: SlotValueResolver
) -> Callable[[str], None]:
    """The serving path's own calls for one text (no HTTP)."""
    reference = make_reference(REFERENCE, "UTC")
    model = ModelRef("profile", "1", "profile@1", None)

    def run(text: str) -> None:
        parse = tagger.parse([text])[0]
        feeling = sentiment.classify([text])[0] if sentiment is not None else None
        vals = tuple(resolver.resolve(s.slot, s.value, reference) for s in parse.slots)
        result = ParseResult(
            text, parse.tokens, [Intent(n, c) for n, c in parse.intent_ranking], parse.slots,
            feeling, model, None, vals, [Intent(n, c) for n, c in parse.intents],
        )  # fmt: skip
        body = result.to_json() | {"request_id": "0" * 32}
        dumped = ParseResponse.model_validate(body).model_dump(mode="json")
        json.dumps(dumped, ensure_ascii=False, separators=(",", ":"))
        parse_row("0" * 32, PARSE, None, [result], RedactionMode.full, 1.0)

    return run


def _profile(
    texts: Sequence[str], steps: list[tuple[str, Step]], whole: Callable[[str], None]
) -> dict[str, list[float]]:
    """CPU milliseconds of each step (and of ``end-to-end``) per text, after a warm-up."""
    for text in texts[:20]:
        state: dict[str, Any] = {"text": text}
        for _, step in steps:
            step(state)
        whole(text)
    gc.collect()
    gc.disable()  # a collection lands on whichever step happens to allocate
    try:
        ms: dict[str, list[float]] = {name: [] for name, _ in steps}
        ms["end-to-end"] = []
        clock = time.process_time_ns
        for text in texts:
            state = {"text": text}
            for name, step in steps:
                start = clock()
                step(state)
                ms[name].append((clock() - start) / 1e6)
            start = clock()
            whole(text)
            ms["end-to-end"].append((clock() - start) / 1e6)
    finally:
        gc.enable()
    return ms


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = datetime.now(UTC)
    artifact = load_artifact(args.tagger)
    tagger = artifact.predictor
    if not isinstance(tagger, SlotTaggerPredictor):
        raise SystemExit(f"error: {args.tagger} is not a slot tagger")
    sentiment = load_artifact(args.sentiment).predictor if args.sentiment else None
    if sentiment is not None and not isinstance(sentiment, SentimentPredictor):
        raise SystemExit(f"error: {args.sentiment} is not a sentiment model")
    if args.texts is not None:
        texts = [line.strip() for line in args.texts.read_text().splitlines() if line.strip()]
        source = str(args.texts)
    else:
        texts = texts_of(load_split(resolve_data_dir(args.data_dir), args.dataset, "valid"))
        source = f"{args.dataset}/valid"
    texts = texts[: 50 if args.quick else args.n]
    if not texts:
        raise SystemExit("error: no utterances to time")
    resolver = SlotValueResolver.from_manifest({"slot_types": artifact.manifest.slot_types})
    if args.engine != "torch" and args.quantize == "int8":
        raise SystemExit("error: --quantize int8 runs on --engine torch")
    if args.kernels == "native" and not native.available():
        raise SystemExit("error: --kernels native: the compiled kernels are not built")
    native.select(args.kernels, args.recurrent)
    tagger = for_engine(tagger, args.engine)
    sentiment = for_engine(sentiment, args.engine) if sentiment is not None else None
    check, floats = None, None
    if args.quantize == "int8":
        floats, tagger = tagger, for_serving(tagger, "int8")
        if args.texts is None:
            with limited_threads(args.threads):
                data_dir = resolve_data_dir(args.data_dir)
                check = _int8_check(floats, tagger, data_dir, args.dataset)
    with limited_threads(args.threads):
        steps = _steps(tagger, sentiment, resolver, args.n_best, floats)
        ms = _profile(texts, steps, _end_to_end(tagger, sentiment, resolver))
    beside = ("end-to-end", "n-best", "tagger network, float32")  # not steps of this parse
    in_parse = [name for name in ms if not name.startswith(beside)]
    total = sum(float(np.median(ms[name])) for name in in_parse)
    rows, table = [], []
    for name, values in ms.items():
        arr = np.asarray(values)
        median = float(np.median(arr))
        share = median / total if name in in_parse else None
        row = {"step": name, "median_ms": median, "p90_ms": float(np.percentile(arr, 90))}
        row |= {"mean_ms": float(arr.mean()), "share_of_steps": share}
        rows.append(row)
        pct = f"{100 * share:.1f}%" if share is not None else "-"
        table.append([name, median, row["p90_ms"], row["mean_ms"], pct])
    table.append(["sum of step medians", total, None, None, "100%"])
    weights = "int8" if args.quantize == "int8" else f"float32, engine {args.engine}"
    if args.engine == "numpy":
        weights += f", kernels {args.kernels}, recurrent weights {args.recurrent}"
    print(f"CPU ms per utterance ({len(texts)} of {source}, {args.threads} thread(s), {weights})")
    print(format_table(["step", "median", "p90", "mean", "share"], table))
    tokens = [len(tagger_tokens(t)) for t in texts]
    payload: dict[str, Any] = {
        "clock": "time.process_time_ns (CPU time of the process)",
        "tagger": str(args.tagger),
        "sentiment": str(args.sentiment) if args.sentiment else None,
        "texts": source,
        "engine": args.engine,
        "kernels": args.kernels,
        "recurrent_weights": args.recurrent if args.engine == "numpy" else None,
        "utterances": len(texts),
        "median_tokens": float(np.median(tokens)),
        "steps": rows,
        "sum_of_step_medians_ms": total,
    }
    if check is not None:
        payload["int8_vs_float"] = check
        print(
            f"\nint8 against float32 on {args.dataset}/valid: "
            f"same tags {100 * check['same_tags']:.1f}% (>= 99.5%), "
            f"slot F1 {check['slot_f1_int8']:.4f} vs {check['slot_f1_float']:.4f}, "
            f"intent accuracy {check['intent_accuracy_int8']:.3f} vs "
            f"{check['intent_accuracy_float']:.3f} (within 0.002): {check['verdict']}"
        )
    print(f"\nwrote {write_results(NAME, args, started, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
