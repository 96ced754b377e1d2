"""What the requested-slot context buys on DSTC8 spans, by cross-validation (issue 14).

The valid splits hold 64-95 utterances with a requested slot per service, so one valid score
moves by a point with one or two utterances, and the seeds spread by more than the context's
effect (README: "Span formats, several intents, dialogue context"). This pools each
service's train + valid and runs ``slotfill cv slots`` for each variant of
:mod:`benchmarks.dialogue_context` ("context": the defaults, "without": no context input,
"answers": also trained on bare answers), every variant on the same folds and seeds. Each
fold scores a fifth of the service (240-531 utterances, 57-109 with a requested slot).

The gain is paired: a variant's ``slot_f1_requested`` minus "without"'s on the same fold and
seed. Reported per service: the median of each score over folds x seeds, the median paired
gain and on how many of the pairs the variant is ahead; PASS when the median gain reaches
the same one point as the valid benchmark.

    python -m benchmarks.dialogue_context_cv [--services Buses_1 ...] [--seeds 13 1 2]

Each ``slotfill cv`` result goes to ``--work`` (default ``build/dialogue_context_cv``) as
``SERVICE.VARIANT.SEED.json`` and is reused when it is there.
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO_ROOT,
    add_common_args,
    format_table,
    log,
    resolve_data_dir,
    write_results,
)
from benchmarks.dialogue_context import SERVICES, TARGETS, VARIANTS, slotfill

KEYS = ("slot_f1", "slot_f1_requested")


def cv_runs(
    data: Path, out: Path, seed: int, folds: int, overrides: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The per-fold rows of ``slotfill cv slots`` for one seed (cached in ``out``)."""
    if not out.is_file():
        args = ["cv", "slots", "--data", str(data), "--folds", str(folds)]
        args += ["--seeds", str(seed), "--threads", "1"]
        if overrides is not None:
            config = out.with_suffix(".config.json")
            config.write_text(json.dumps(overrides))
            args += ["--config", str(config)]
        log(f"cross-validating {out.stem}")
        out.write_text(slotfill(*args).splitlines()[-1] + "\n")
    else:
        log(f"reusing {out}")
    runs: list[dict[str, Any]] = json.loads(out.read_text())["runs"]
    return runs


def summarise(
    service: str, runs: dict[str, list[dict[str, Any]]]
) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    """Table rows and verdicts of one service; ``runs`` by variant, in the same fold order."""
    rows: list[list[Any]] = []
    verdicts: list[dict[str, Any]] = []
    base = runs["without"]
    for variant, rs in runs.items():
        median = {k: statistics.median(r[k] for r in rs) for k in KEYS}
        if variant == "without":
            rows.append([service, variant, *median.values(), None, None])
            continue
        if [(r["seed"], r["fold"]) for r in rs] != [(b["seed"], b["fold"]) for b in base]:
            raise SystemExit(f"error: {service} {variant}: not the folds and seeds of 'without'")
        gains = [
            r["slot_f1_requested"] - b["slot_f1_requested"] for r, b in zip(rs, base, strict=True)
        ]
        gain = statistics.median(gains)
        ahead = sum(g > 0 for g in gains)
        behind = sum(g < 0 for g in gains)
        ok = gain >= TARGETS["slot_f1_requested_gain"]
        verdicts.append(
            {
                "service": service,
                "variant": variant,
                "median": median,
                "paired_gains": gains,
                "median_gain": gain,
                "ahead": ahead,
                "behind": behind,
                "requested_pass": ok,
            }
        )
        rows.append(
            [
                service,
                variant,
                *median.values(),
                f"{gain:+.4f} {'PASS' if ok else 'FAIL'}",
                f"{ahead} / {behind} of {len(gains)}",
            ]
        )
    return rows, verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dialogue_context_cv",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_common_args(parser)
    parser.add_argument("--services", nargs="+", default=list(SERVICES), metavar="NAME")
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 1, 2], metavar="SEED")
    parser.add_argument("--folds", type=int, default=5, metavar="K")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="variants to run ('without' is always run: the gains are against it)",
    )
    parser.add_argument(
        "--work", type=Path, default=REPO_ROOT / "build" / "dialogue_context_cv", metavar="DIR"
    )
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    data_root = resolve_data_dir(args.data_dir) / "dstc8_spans"
    if args.quick:  # a smoke run: one service, one seed, two folds of two epochs
        args.services, args.seeds, args.folds = args.services[:1], args.seeds[:1], 2
        args.work = args.work.with_name(args.work.name + ".quick")
    args.work.mkdir(parents=True, exist_ok=True)

    rows: list[list[Any]] = []
    verdicts: list[dict[str, Any]] = []
    every: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for service in args.services:
        by_variant: dict[str, list[dict[str, Any]]] = {}
        for variant, overrides in VARIANTS.items():
            if variant != "without" and variant not in args.variants:
                continue
            if args.quick:
                overrides = {**(overrides or {}), "epochs": 2}
            by_variant[variant] = [
                row
                for seed in args.seeds
                for row in cv_runs(
                    data_root / service,
                    args.work / f"{service}.{variant}.{seed}.json",
                    seed,
                    args.folds,
                    overrides,
                )
            ]
        service_rows, service_verdicts = summarise(service, by_variant)
        rows += service_rows
        verdicts += service_verdicts
        every[service] = {
            v: [{k: r[k] for k in ("seed", "fold", "best_epoch", *KEYS)} for r in rs]
            for v, rs in by_variant.items()
        }

    print(
        f"{args.folds}-fold cross-validation on train + valid, seeds {args.seeds}: medians over "
        f"folds x seeds; gain: median paired gain in slot_f1_requested against 'without' "
        f"(target {TARGETS['slot_f1_requested_gain']}); ahead / behind: pairs"
    )
    print(
        format_table(["service", "variant", "slot_f1", "requested", "gain", "ahead / behind"], rows)
    )
    path = write_results(
        "dialogue_context_cv",
        args,
        started,
        {"targets": TARGETS, "folds": args.folds, "verdicts": verdicts, "runs": every},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
