"""The time ``n_best`` adds to a parse: one text per call, in-process, as a server worker runs it.

Every call parses one text twice, without and with ``n_best=K`` (alternating which runs
first), cycling through DATA/valid/seq.in; the medians over ``--calls`` calls are reported,
and the median of the per-call differences as the added time. Both in wall time and in this
process's CPU time, which other processes competing for the cores leave nearly unchanged.

    python -m benchmarks.nbest --artifact DIR --texts DATA [--k 5] [--calls 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import add_common_args, latency_summary, log, write_results

NAME = "nbest"


def measure(artifact: Path, data: Path, k: int, calls: int) -> dict[str, Any]:
    import torch

    from models.artifact import load_artifact
    from models.predictor import SlotTaggerPredictor

    predictor = load_artifact(artifact).predictor
    if not isinstance(predictor, SlotTaggerPredictor):
        raise SystemExit(f"error: {artifact} is not a slot tagger")
    texts = [
        " ".join(line.split())
        for line in (data / "valid" / "seq.in").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    torch.set_num_threads(1)  # one request on one core, as a server worker runs it
    for text in texts[:20]:  # warm-up
        predictor.parse([text], n_best=k)
    plain_s: list[float] = []
    nbest_s: list[float] = []
    plain_cpu: list[float] = []
    nbest_cpu: list[float] = []
    hypotheses = 0
    for i in range(calls):
        text = texts[i % len(texts)]
        for with_k in (i % 2 == 0, i % 2 == 1):
            started, cpu = time.perf_counter(), time.process_time()
            parse = predictor.parse([text], n_best=k if with_k else 0)[0]
            (nbest_s if with_k else plain_s).append(time.perf_counter() - started)
            (nbest_cpu if with_k else plain_cpu).append(time.process_time() - cpu)
            hypotheses += len(parse.hypotheses)
    added = [b - a for a, b in zip(plain_s, nbest_s, strict=True)]
    added_cpu = [b - a for a, b in zip(plain_cpu, nbest_cpu, strict=True)]
    return {
        "artifact": str(artifact),
        "texts": len(texts),
        "calls": calls,
        "k": k,
        "tags": len(predictor.tags),
        "mean_hypotheses": hypotheses / calls,
        "torch_threads": torch.get_num_threads(),
        "parse_ms": latency_summary(plain_s),
        "parse_n_best_ms": latency_summary(nbest_s),
        "added_ms_median": statistics.median(added) * 1000.0,
        "cpu_parse_ms_median": statistics.median(plain_cpu) * 1000.0,
        "cpu_parse_n_best_ms_median": statistics.median(nbest_cpu) * 1000.0,
        "cpu_added_ms_median": statistics.median(added_cpu) * 1000.0,
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.nbest", description=__doc__)
    add_common_args(p)
    p.add_argument("--artifact", type=Path, required=True, help="a slot tagger's artifact dir")
    p.add_argument("--texts", type=Path, required=True, help="a data folder with valid/seq.in")
    p.add_argument("--k", type=int, default=5, help="n_best (default 5)")
    p.add_argument("--calls", type=int, default=200, help="timed calls (default 200)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = datetime.now(UTC)
    result = measure(args.artifact, args.texts, args.k, 20 if args.quick else args.calls)
    print(
        f"{args.artifact} ({result['tags']} tags): parse {result['parse_ms']['p50_ms']:.3f} ms, "
        f"with n_best={args.k} {result['parse_n_best_ms']['p50_ms']:.3f} ms (medians of "
        f"{result['calls']} calls); added {result['added_ms_median']:.3f} ms (median per call)"
    )
    print(
        f"CPU time: parse {result['cpu_parse_ms_median']:.3f} ms, with n_best={args.k} "
        f"{result['cpu_parse_n_best_ms_median']:.3f} ms; added "
        f"{result['cpu_added_ms_median']:.3f} ms (median per call)"
    )
    path = write_results(NAME, args, started, result)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
