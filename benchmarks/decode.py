"""pytorch-crf against our batched CRF code, on the emissions of a trained tagger.

Decoding: ``torchcrf.CRF.decode`` (a Python loop over sequences with ``.item()`` per token)
against ``models.crf.viterbi_decode`` (the whole batch as tensor operations), both with the
unconstrained parameters (``model.crf_params(constrained=False)``) so they solve the same
problem and must return the same paths. Timed at batch 1 and batch 64, emissions
precomputed, decoding only.

Training likelihood: ``torchcrf.CRF.forward`` against ``models.crf.log_likelihood``, forward
and backward, batches of 32 with the gold tags; values and gradients are compared too.

    python -m benchmarks.decode --artifact DIR
"""

from __future__ import annotations

import argparse
import functools
import gc
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmarks.common import (
    add_common_args,
    format_table,
    limited_threads,
    load_split,
    log,
    resolve_data_dir,
    write_results,
)
from models.artifact import load_artifact
from models.crf import log_likelihood, viterbi_decode
from models.predictor import SlotTaggerPredictor
from training.data import SlotDataset, read_slot_folder

NAME = "decode"
Batch = tuple[Tensor, Tensor]  # emissions (batch, seq_len, num_tags), bool mask


def emission_batches(
    predictor: SlotTaggerPredictor, tokens: Sequence[Sequence[str]], size: int
) -> list[Batch]:
    """Emissions and masks of ``tokens`` in consecutive batches of ``size`` (eval mode).

    ``no_grad`` rather than ``inference_mode``: the likelihood benchmark backpropagates
    through these tensors, which inference tensors do not allow.
    """
    out = []
    with torch.no_grad():
        for i in range(0, len(tokens), size):
            batch = predictor.encode(tokens[i : i + size])
            emissions, _ = predictor.model(batch)
            out.append((emissions, batch.mask))
    return out


def best_time(run: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``run()`` over ``repeats`` calls, after one warm-up call."""
    run()
    best = float("inf")
    for _ in range(max(repeats, 1)):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def bench_decode(
    predictor: SlotTaggerPredictor, data: SlotDataset, repeats: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Agreement and per-utterance decoding time at batch 1 and 64."""
    model = predictor.model
    crf = model.crf
    with torch.inference_mode():
        params = model.crf_params(constrained=False)
    n = len(data)
    by_size = {size: emission_batches(predictor, data.tokens, size) for size in (1, 64)}

    def theirs(batches: list[Batch]) -> list[list[int]]:
        with torch.inference_mode():
            return [path for e, m in batches for path in crf.decode(e, mask=m)]

    def ours(batches: list[Batch]) -> list[list[int]]:
        with torch.inference_mode():
            return [path for e, m in batches for path in viterbi_decode(e, m, params)]

    agreement: dict[str, Any] = {"utterances": n}
    for size, batches in by_size.items():
        a, b = theirs(batches), ours(batches)
        agreement[f"batch{size}_same_paths"] = sum(x == y for x, y in zip(a, b, strict=True))
        disagree = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        agreement[f"batch{size}_disagreeing_indices"] = disagree[:20]
    rows: list[dict[str, Any]] = []
    for size, batches in by_size.items():
        t_theirs = best_time(functools.partial(theirs, batches), repeats)
        t_ours = best_time(functools.partial(ours, batches), repeats)
        rows.append(
            {
                "what": "viterbi decode",
                "batch_size": size,
                "unit": "ms/utterance",
                "torchcrf": t_theirs / n * 1000,
                "ours": t_ours / n * 1000,
                "speedup": t_theirs / t_ours if t_ours > 0 else None,
                "same_results": f"{agreement[f'batch{size}_same_paths']}/{n}",
            }
        )
    return rows, agreement


def bench_likelihood(
    predictor: SlotTaggerPredictor, data: SlotDataset, repeats: int, size: int = 32
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Forward+backward time per batch of ``size`` of the CRF log-likelihood."""
    model = predictor.model
    crf = model.crf
    index = predictor.tags.index_of
    unknown = sum(t not in index for row in data.tags for t in row)
    batches = []
    for (emissions, mask), start in zip(
        emission_batches(predictor, data.tokens, size), range(0, len(data), size), strict=True
    ):
        tag_rows = data.tags[start : start + size]
        seq_len = mask.shape[1]
        gold = torch.tensor(
            [[index.get(t, 0) for t in r] + [0] * (seq_len - len(r)) for r in tag_rows]
        )
        batches.append((emissions.clone().requires_grad_(True), gold, mask))

    def step_theirs() -> list[Tensor]:
        out = []
        for emissions, gold, mask in batches:
            model.zero_grad(set_to_none=True)
            emissions.grad = None
            llh = crf(emissions, gold, mask=mask, reduction="none")
            torch.autograd.backward(-llh.mean())
            out.append(llh.detach())
        return out

    def step_ours(constrained: bool) -> list[Tensor]:
        out = []
        for emissions, gold, mask in batches:
            model.zero_grad(set_to_none=True)
            emissions.grad = None
            llh = log_likelihood(emissions, gold, mask, model.crf_params(constrained=constrained))
            torch.autograd.backward(-llh.mean())
            out.append(llh.detach())
        return out

    # Values and gradients of the unconstrained likelihood must match pytorch-crf's.
    ref = step_theirs()
    ref_grads = [e.grad.clone() for e, _, _ in batches if e.grad is not None]
    ref_trans = crf.transitions.grad.clone() if crf.transitions.grad is not None else None
    got = step_ours(False)
    got_grads = [e.grad.clone() for e, _, _ in batches if e.grad is not None]
    got_trans = crf.transitions.grad.clone() if crf.transitions.grad is not None else None
    check = {
        "batches": len(batches),
        "batch_size": size,
        "gold_tags_unknown_to_model": unknown,
        "max_abs_diff_loglik": max(
            float((a - b).abs().max()) for a, b in zip(ref, got, strict=True)
        ),
        "max_abs_diff_grad_emissions": max(
            float((a - b).abs().max()) for a, b in zip(ref_grads, got_grads, strict=True)
        ),
        "max_abs_diff_grad_transitions": (
            float((ref_trans - got_trans).abs().max())
            if ref_trans is not None and got_trans is not None
            else None
        ),
    }
    nb = len(batches)
    t_theirs = best_time(step_theirs, repeats)
    rows: list[dict[str, Any]] = []
    for constrained in (False, True):
        t_ours = best_time(functools.partial(step_ours, constrained), repeats)
        rows.append(
            {
                "what": "log-lik fwd+bwd" + (" (BIO-constrained)" if constrained else ""),
                "batch_size": size,
                "unit": "ms/batch",
                "torchcrf": t_theirs / nb * 1000,
                "ours": t_ours / nb * 1000,
                "speedup": t_theirs / t_ours if t_ours > 0 else None,
                "same_results": "-"
                if constrained
                else f"max|d| {check['max_abs_diff_loglik']:.1e}",
            }
        )
    model.zero_grad(set_to_none=True)
    return rows, check


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.decode",
        description="torchcrf.CRF.decode / forward against models.crf.viterbi_decode / "
        "log_likelihood on the emissions of a trained tagger.",
    )
    add_common_args(p)
    p.add_argument("--artifact", type=Path, required=True, metavar="DIR", help="slot artifact")
    p.add_argument(
        "--split",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder with seq.in/seq.out (default: <data dir>/atis/valid)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed passes, best kept (--quick: 1)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run both comparisons; exit 1 if any decoded path differs."""
    args = build_parser().parse_args(argv)
    if args.quick:
        args.repeats = 1
    started = datetime.now(UTC)
    artifact = load_artifact(args.artifact)
    predictor = artifact.predictor
    if not isinstance(predictor, SlotTaggerPredictor):
        raise SystemExit(f"error: {args.artifact} is a {artifact.task} artifact, not a slot tagger")
    if args.split is not None:
        data = read_slot_folder(args.split)
    else:
        data = load_split(resolve_data_dir(args.data_dir), "atis", "valid")
    log(f"{len(data)} utterances from {data.source}, {len(predictor.tags)} tags")
    with limited_threads(args.threads):
        decode_rows, agreement = bench_decode(predictor, data, args.repeats)
        llh_rows, check = bench_likelihood(predictor, data, args.repeats)
    rows = decode_rows + llh_rows
    headers = ["what", "batch", "unit", "torchcrf", "ours", "speedup", "same"]
    keys = ["what", "batch_size", "unit", "torchcrf", "ours", "speedup", "same_results"]
    print(format_table(headers, [[r[k] for k in keys] for r in rows]))
    ok = all(agreement[f"batch{s}_same_paths"] == len(data) for s in (1, 64))
    print(f"\npaths identical: {'yes' if ok else 'NO'} ({agreement})")
    print(f"likelihood check: {check}")
    notes = [
        f"{args.threads} torch thread(s); best of {args.repeats} passes after a warm-up",
        "decode: emissions precomputed (model in eval mode); only the CRF decoding is timed; both "
        "use the unconstrained parameters, so paths must be identical",
        "log-lik: forward + backward of -mean(log-likelihood) w.r.t. emissions and CRF "
        "parameters; the BIO-constrained row is what training runs (crf_params() rebuilt per "
        "batch, constraints included)",
    ]
    payload = {
        "artifact": str(args.artifact),
        "data": data.source,
        "results": rows,
        "decode_agreement": agreement,
        "likelihood_check": check,
        "notes": notes,
    }
    path = write_results(NAME, args, started, payload)
    print(f"\nwrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
