"""What one parse request may cost at the request limits: the time of the tagger and the
sentiment network, in-process on ``--threads`` threads, and the size of the answer's tokens and
slots, for requests shaped to reach the per-request token limit in different ways (one long
text, several, a full batch of ordinary utterances) and for the largest batch the limits let
through.

    python -m benchmarks.request_cost --tagger DIR --sentiment DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import add_common_args, format_table, limited_threads, log, write_results
from models.artifact import load_artifact
from models.predictor import SentimentPredictor, SlotTaggerPredictor

NAME = "request_cost"
UTTERANCE = "book a table for two at 7pm tomorrow please"
LONG_UTTERANCE = " ".join((UTTERANCE.split() * 4)[:32])
# (label, texts): 2,048 tokens (the default SLOTFILL_MAX_REQUEST_TOKENS) in several shapes.
SHAPES: list[tuple[str, list[str]]] = [
    ("1 text of 2,000 '!'", ["!" * 2000]),
    ("4 texts of 512 '!'", ["!" * 512] * 4),
    ("64 texts of 32 words", [LONG_UTTERANCE] * 64),
    ("64 texts of 9 words", [UTTERANCE] * 64),
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.request_cost",
        description="Time and answer size of parse requests at the request limits.",
    )
    add_common_args(p)
    p.add_argument("--tagger", type=Path, required=True, metavar="DIR", help="slot artifact")
    p.add_argument("--sentiment", type=Path, default=None, metavar="DIR", help="sentiment one")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per shape, best kept")
    return p


def _answer_bytes(parses: Sequence[Any]) -> int:
    """Bytes of the tokens and slots of the answers, as the API writes them."""
    body = [
        {
            "tokens": [{"text": t.text, "start": t.start, "end": t.end} for t in p.tokens],
            "slots": [
                {"slot": s.slot, "value": s.value, "start": s.start, "end": s.end, "c": 0.5}
                for s in p.slots
            ],
        }
        for p in parses
    ]
    return len(json.dumps(body, separators=(",", ":")))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = datetime.now(UTC)
    tagger = load_artifact(args.tagger).predictor
    if not isinstance(tagger, SlotTaggerPredictor):
        raise SystemExit(f"error: {args.tagger} is not a slot tagger")
    sentiment = load_artifact(args.sentiment).predictor if args.sentiment else None
    if sentiment is not None and not isinstance(sentiment, SentimentPredictor):
        raise SystemExit(f"error: {args.sentiment} is not a sentiment model")
    rows, results = [], []
    with limited_threads(args.threads):
        tagger.parse([UTTERANCE] * 8)  # warm-up
        for label, texts in SHAPES[: 2 if args.quick else None]:
            seconds = []
            for _ in range(1 if args.quick else args.repeats):
                start = time.perf_counter()
                parses = tagger.parse(texts)
                if sentiment is not None:
                    sentiment.classify(texts)
                seconds.append(time.perf_counter() - start)
            tokens = sum(len(p.tokens) for p in parses)
            size = _answer_bytes(parses)
            log(f"{label}: {tokens} tokens, {min(seconds):.3f}s")
            rows.append([label, tokens, sum(map(len, texts)), round(min(seconds), 3), size])
            results.append({"shape": label, "tokens": tokens, "seconds": min(seconds)})
            results[-1]["answer_bytes"] = size
    print(format_table(["request", "tokens", "chars", "best s", "tokens+slots bytes"], rows))
    payload = {"tagger": str(args.tagger), "sentiment": str(args.sentiment), "results": results}
    print(f"\nwrote {write_results(NAME, args, started, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
