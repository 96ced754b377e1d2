"""A candidate's ``slotfill cv`` runs against a baseline's, paired by seed and fold.

Each side is one or more JSON results of ``slotfill cv slots`` (the last line of its stdout;
a seed's folds may be split over files, as ``--only-folds`` runs give them). Per seed: intent
utterances right over the folds both sides ran (pooled), the fold median of intent accuracy,
the fold median of slot F1, and the paired differences; then the median over seeds::

    .venv/bin/python -m benchmarks.cv_paired --candidate cand_*.json --baseline base_*.json \\
        --out benchmarks/results/paired.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

Key = tuple[int, int]  # (seed, fold)


def runs_of(paths: list[Path]) -> dict[Key, dict[str, Any]]:
    """Every fold run of the files by (seed, fold); a pair found twice is an error."""
    out: dict[Key, dict[str, Any]] = {}
    for path in paths:
        for run in json.loads(path.read_text().strip().splitlines()[-1])["runs"]:
            key = (int(run["seed"]), int(run["fold"]))
            if key in out:
                raise SystemExit(f"{path}: seed {key[0]} fold {key[1]} appears twice")
            out[key] = run
    return out


def right(run: dict[str, Any]) -> int:
    """Intent utterances right in a fold run."""
    return round(float(run["intent_accuracy"]) * int(run["n"]))


def side(runs: dict[Key, dict[str, Any]], keys: list[Key]) -> dict[str, Any]:
    chosen = [runs[k] for k in keys]
    return {
        "right": sum(right(r) for r in chosen),
        "held_out": sum(r["n"] for r in chosen),
        "intent_accuracy_fold_median": statistics.median(r["intent_accuracy"] for r in chosen),
        "slot_f1_fold_median": statistics.median(r["slot_f1"] for r in chosen),
        "folds": {
            str(k[1]): {"right": right(r), "slot_f1": round(r["slot_f1"], 4)}
            for k, r in zip(keys, chosen, strict=True)
        },
    }


def compare(
    candidate: dict[Key, dict[str, Any]], baseline: dict[Key, dict[str, Any]]
) -> dict[str, Any]:
    seeds = sorted({s for s, _ in candidate})
    per_seed = {}
    for seed in seeds:
        keys = sorted(k for k in candidate if k[0] == seed and k in baseline)
        if not keys:
            continue
        cand, base = side(candidate, keys), side(baseline, keys)
        slot_gains = [candidate[k]["slot_f1"] - baseline[k]["slot_f1"] for k in keys]
        per_seed[str(seed)] = {
            "candidate": cand,
            "baseline": base,
            "right_gain": cand["right"] - base["right"],
            "slot_f1_higher_folds": sum(g > 0 for g in slot_gains),
            "slot_f1_mean_gain": round(statistics.fmean(slot_gains), 5),
            "folds": [k[1] for k in keys],
        }
    rows = list(per_seed.values())
    return {
        "per_seed": per_seed,
        "median_right": {
            side_: statistics.median(r[side_]["right"] for r in rows)
            for side_ in ("candidate", "baseline")
        }
        if rows
        else {},
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        "seed  folds      right cand / base (gain)   intent acc fold median   slot F1 fold median"
        "   slot F1 higher",
    ]
    for seed, r in result["per_seed"].items():
        c, b = r["candidate"], r["baseline"]
        lines.append(
            f"{seed:>4}  {','.join(map(str, r['folds'])):<9}  "
            f"{c['right']:>6} / {b['right']:>6} ({r['right_gain']:+d}) of {c['held_out']}   "
            f"{c['intent_accuracy_fold_median']:.4f} / {b['intent_accuracy_fold_median']:.4f}"
            f"        {c['slot_f1_fold_median']:.4f} / {b['slot_f1_fold_median']:.4f}"
            f"       {r['slot_f1_higher_folds']} of {len(r['folds'])}"
        )
    if result["median_right"]:
        m = result["median_right"]
        lines.append(f"median over seeds, right: {m['candidate']} / {m['baseline']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", type=Path, nargs="+", required=True)
    parser.add_argument("--baseline", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, default=None, help="JSON result")
    args = parser.parse_args()
    result = compare(runs_of(args.candidate), runs_of(args.baseline))
    result["candidate_files"] = [p.name for p in args.candidate]
    result["baseline_files"] = [p.name for p in args.baseline]
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
