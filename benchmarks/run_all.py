"""Run every benchmark in sequence (``make bench``); each writes its own JSON result.

``peers`` trains our tagger on each data set and saves it under
``benchmarks/results/artifacts/<time>/<dataset>``; ``decode`` and ``inference`` then use the
ATIS one (``inference`` beside sklearn-crfsuite's tagger, trained there once). ``cells``
trains three more taggers per data set, then the default tagger's seed medians (seeds 13, 1
and 2, two runs at a time on one core each; ``cells-seeds.json``).
Without ``--quick`` this takes hours on a 2-core machine: run it when the machine is
otherwise idle.

    python -m benchmarks.run_all [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from benchmarks.common import RESULTS_DIR, log


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run_all",
        description="peers, then cells (cell comparison, seed medians), then decode and "
        "inference on the ATIS tagger from peers.",
    )
    p.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    p.add_argument("--data-dir", type=Path, default=None, metavar="DIR", help="passed through")
    p.add_argument(
        "--skip-cells",
        action="store_true",
        help="leave out the cell comparison and the seed medians",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks one after another; stop at the first failure."""
    args = build_parser().parse_args(argv)
    common = (["--quick"] if args.quick else []) + (
        ["--data-dir", str(args.data_dir)] if args.data_dir is not None else []
    )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    artifacts = RESULTS_DIR / "artifacts" / f"{stamp}{'-quick' if args.quick else ''}"
    steps: list[list[str]] = [["peers", "--save-slotfill", str(artifacts)]]
    if not args.skip_cells:
        seeds_out = RESULTS_DIR / f"cells-seeds{'.quick' if args.quick else ''}.json"
        steps.append(["cells"])
        seeds = ["--cells", "lstm", "--seeds", "13", "1", "2", "--threads", "1", "--jobs", "2"]
        steps.append(["cells", *seeds, "--out", str(seeds_out)])
    steps += [
        ["decode", "--artifact", str(artifacts / "atis")],
        # Issue 18's anchor: sklearn-crfsuite timed in the same loop as each parse.
        ["inference", "--artifact", str(artifacts / "atis"),
         "--anchor-crfsuite", str(artifacts / "atis_crfsuite.model")],
    ]  # fmt: skip
    for name, *extra in steps:
        command = [sys.executable, "-m", f"benchmarks.{name}", *extra, *common]
        log("$ " + " ".join(command))
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            log(f"benchmarks.{name} failed with exit status {done.returncode}")
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
