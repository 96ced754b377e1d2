"""What one serving worker costs to start and to keep, per engine (``SLOTFILL_ENGINE``).

Each run is a fresh Python process that does what a worker's start-up does with the models
(imports the serving registry, loads, sanity-checks and warms the tagger and the sentiment
model with the engine), then parses ``--parses`` utterances of the ATIS valid split with both
models, and reports: CPU seconds of the process from its start to ready (``time.process_time``,
interpreter start and imports included: on a shared machine wall time mostly measures the
neighbours), wall seconds to ready, resident memory (``VmRSS``) after the parses, and whether
torch was imported. Runs alternate engine by engine; medians over ``--repeats`` runs.

It complements ``benchmarks.service`` (real uvicorn workers, cold start to the first
``/readyz`` 200 in wall time, RSS after an HTTP load) where that one's wall times are
dominated by other jobs on the machine.

    python -m benchmarks.worker_footprint --tagger DIR --sentiment DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import add_common_args, format_table, resolve_data_dir, write_results

NAME = "worker_footprint"
ENGINES = ("torch", "numpy")  # models.engine.ENGINES; not imported: the runs import it
# Issue 18: resident memory per worker and cold start.
TARGETS = {"rss_mb": 300.0, "cold_start_s": 1.5}
VERSION = "20260101T000000000000Z"

# The child: a worker's model start-up, then parses; prints one JSON line.
CHILD = r"""
import json, sys, time
from pathlib import Path
started = time.perf_counter()
store, engine, texts_file, parses = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
from threadpoolctl import threadpool_limits
threadpool_limits(1)
if engine == "torch":  # as app.main: a numpy-engine worker never imports torch
    import torch
    torch.set_num_threads(1)
from app.serving.registry import ModelRegistry
registry = ModelRegistry(store, "atis", ["atis"], "airline", engine=engine)
registry.load_all()
ready_cpu, ready_wall = time.process_time(), time.perf_counter() - started
tagger, sentiment = registry.get("atis").tagger, registry.sentiment().classifier
texts = Path(texts_file).read_text().splitlines()
for i in range(parses):
    text = texts[i % len(texts)]
    tagger.parse([text])
    sentiment.classify([text])
status = Path("/proc/self/status").read_text()
rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
print(json.dumps({"ready_cpu_s": ready_cpu, "ready_wall_s": ready_wall, "rss_mb": rss / 1024}))
"""


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.worker_footprint",
        description="Start-up CPU time and resident memory of a worker's models, per engine.",
    )
    add_common_args(p)
    p.add_argument("--tagger", type=Path, required=True, metavar="DIR", help="slot artifact")
    p.add_argument("--sentiment", type=Path, required=True, metavar="DIR", help="sentiment one")
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    p.add_argument("--repeats", type=int, default=3, help="runs per engine (default 3)")
    p.add_argument("--parses", type=int, default=500, help="parses after start-up (default 500)")
    return p


def run_child(store: Path, engine: str, texts: Path, parses: int) -> dict[str, Any]:
    """One fresh process; its JSON line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLOTFILL_")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-c", CHILD, str(store), engine, str(texts), str(parses)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"error: the {engine} run failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and write the table and JSON."""
    args = build_parser().parse_args(argv)
    if args.quick:
        args.repeats, args.parses = 1, min(args.parses, 50)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    data = resolve_data_dir(args.data_dir) / "atis" / "valid" / "seq.in"
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in args.engines}
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        store = Path(tmp)
        for name, artifact in (("atis", args.tagger), ("airline", args.sentiment)):
            shutil.copytree(artifact, store / name / VERSION)
        for _ in range(args.repeats):
            for engine in args.engines:
                runs[engine].append(run_child(store, engine, data, args.parses))
    load_after = os.getloadavg()
    results: dict[str, Any] = {}
    rows = []
    for engine, got in runs.items():
        median = {k: statistics.median(r[k] for r in got) for k in got[0]}
        verdicts = {
            "rss_mb": "PASS" if median["rss_mb"] <= TARGETS["rss_mb"] else "FAIL",
            "cold_start_s": "PASS" if median["ready_cpu_s"] <= TARGETS["cold_start_s"] else "FAIL",
        }
        results[engine] = {"median": median, "runs": got, "verdicts": verdicts}
        rows.append(
            [
                engine,
                len(got),
                f"{median['ready_cpu_s']:.2f} {verdicts['cold_start_s']}",
                f"{median['ready_wall_s']:.2f}",
                f"{median['rss_mb']:.0f} {verdicts['rss_mb']}",
            ]
        )
    print(f"one worker's models: start-up, then {args.parses} parses (tagger + sentiment)")
    print(
        format_table(
            ["engine", "runs", "ready CPU s", "ready wall s", "RSS MB"],
            [*rows, ["target", "", "<= 1.5", "", "<= 300"]],
        )
    )
    print(f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    payload = {
        "tagger": str(args.tagger),
        "sentiment": str(args.sentiment),
        "targets": TARGETS,
        "results": results,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "notes": [
            "ready CPU s: time.process_time() of a fresh process once the registry has loaded, "
            "checked and warmed both models (interpreter start and imports included); the "
            "HTTP server's own start-up (FastAPI app, database, log writer) is not included",
            "RSS: VmRSS after the parses",
        ],
    }
    print(f"\nwrote {write_results(NAME, args, started, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
