"""CPU cost of the web stack around one ``POST /v1/parse``, in-process, without the networks.

Drives the ASGI app directly (no socket, no uvicorn, no HTTP client): each request is one
``app(scope, receive, send)`` call on the event loop, as uvicorn makes it after parsing the
request head. The app is started with its lifespan (models loaded, request-log writer on a
SQLite database in a temporary folder, journal on), then the micro-batcher's model call is
replaced by a lookup of results computed once beforehand, so what is measured is everything
but the networks: the guard middleware, body reading and the strict-JSON check, FastAPI's
routing, dependencies and validation, the hand-off to the batcher (a thread's with the torch
engine), slot values, the
request-log row (and its journal line), the response body and metrics.

It reports CPU microseconds per request (``time.process_time``: all threads, so the
request-log writer's inserts are in it; and ``time.thread_time`` of the event-loop thread),
medians over ``--rounds`` rounds of ``--requests`` requests, and with ``--profile`` the
cumulative cProfile time of the main layers (event-loop thread only).

    python -m benchmarks.http_overhead --store DIR --model NAME --sentiment NAME

CPU time, not wall time: on a shared, loaded machine it is the figure that repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.config import Settings
from app.main import create_app

TEXTS = (
    "show me flights from boston to denver tomorrow morning",
    "what is the cheapest fare from dallas to baltimore on american airlines",
    "i want to fly from pittsburgh to atlanta on wednesday",
    "list the nonstop flights leaving new york after 6 pm",
)
# cProfile functions whose cumulative time is a layer of the request (matched by name).
LAYERS = {
    "guard middleware (all below)": ("middleware.py", "__call__"),
    "read_body": ("bodies.py", "read_body"),
    "json_problem (strict JSON)": ("bodies.py", "json_problem"),
    "FastAPI request handling (app)": ("routing.py", "app"),
    "request body + validation": ("dependencies/utils.py", "solve_dependencies"),
    "handler parse()": ("parse_routes.py", "parse"),
    "batcher hand-off": ("batcher.py", "parse_async"),
    "with_values": ("values.py", "with_values"),
    "_finish (log row)": ("parse_routes.py", "_finish"),
    "parse_row": ("rows.py", "parse_row"),
    "writer.submit (journal)": ("writer.py", "submit"),
    "response serialisation": ("routing.py", "serialize_response"),
    "metrics observe": ("metrics.py", "observe"),
}


def _migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(Path(__file__).resolve().parents[1] / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/parse",
        "raw_path": b"/v1/parse",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _request(app: Any, body: bytes) -> int:
    sent: list[dict[str, Any]] = []
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if done:
            await asyncio.sleep(3600)
        done = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(body), receive, send)
    status: int = sent[0]["status"]
    return status


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="http_overhead-"))
    url = f"sqlite:///{folder / 'log.db'}"
    _migrate(url)
    settings = Settings(
        model_store=args.store,
        default_model=args.model,
        sentiment_model=args.sentiment,
        database_url=url,
        log_spill_dir=folder / "spill",
        torch_threads=1,
        engine=args.engine,
    )
    app = create_app(settings)
    bodies = [json.dumps({"text": t}).encode() for t in TEXTS]
    async with app.router.lifespan_context(app):
        batcher = app.state.batcher
        real = batcher._run_batch
        cache: dict[tuple[str, ...], Any] = {}

        def cached(tagger: Any, sentiment: Any, texts: Sequence[str], *rest: Any) -> Any:
            key = tuple(texts)
            if key not in cache:
                cache[key] = real(tagger, sentiment, texts, *rest)
            return cache[key]

        if not args.with_models:
            batcher._run_batch = cached
        for i in range(200):  # warm-up: caches, first-call imports
            assert await _request(app, bodies[i % len(bodies)]) == 200
        await asyncio.sleep(0.3)
        rounds: list[tuple[float, float, float]] = []
        for _ in range(args.rounds):
            cpu0, thr0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
            for i in range(args.requests):
                await _request(app, bodies[i % len(bodies)])
            thr1, wall1 = time.thread_time(), time.perf_counter()
            # let the writer drain what this round queued, inside the measured process time
            while app.state.log_writer.queue_depth:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.06)
            cpu1 = time.process_time()
            n = args.requests
            rounds.append(
                ((cpu1 - cpu0) / n * 1e6, (thr1 - thr0) / n * 1e6, (wall1 - wall0) / n * 1e6)
            )
        layers: dict[str, float] = {}
        if args.profile:
            profile = cProfile.Profile(time.thread_time)  # CPU of this thread, not waits
            profile.enable()
            for i in range(args.requests):
                await _request(app, bodies[i % len(bodies)])
            profile.disable()
            stats = pstats.Stats(profile)
            entries: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
            for label, (file, func) in LAYERS.items():
                total = sum(
                    v[3] for (f, _, name), v in entries.items() if f.endswith(file) and name == func
                )
                layers[label] = total / args.requests * 1e6
            if args.profile_out:
                stats.dump_stats(args.profile_out)
    return {
        "process_cpu_us": statistics.median(r[0] for r in rounds),
        "loop_thread_cpu_us": statistics.median(r[1] for r in rounds),
        "wall_us": statistics.median(r[2] for r in rounds),
        "rounds": rounds,
        "profiled_layers_us": layers,
        "with_models": args.with_models,
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, required=True, help="model store folder")
    p.add_argument("--model", required=True, help="tagger name in the store")
    p.add_argument("--sentiment", default=None, help="sentiment model name in the store")
    p.add_argument("--engine", default="numpy", choices=("numpy", "torch"))
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--with-models", action="store_true", help="run the networks too")
    p.add_argument("--profile", action="store_true", help="cProfile one more round")
    p.add_argument("--profile-out", default=None, help="write the pstats file here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = asyncio.run(_run(args))
    print(
        f"CPU per request, networks {'included' if args.with_models else 'excluded'}: "
        f"process {result['process_cpu_us']:.0f} us, event-loop thread "
        f"{result['loop_thread_cpu_us']:.0f} us, wall {result['wall_us']:.0f} us (one request at "
        f"a time; median of {args.rounds} x {args.requests})"
    )
    for label, us in result["profiled_layers_us"].items():
        print(f"  {label:34s} {us:7.0f} us (cumulative, under cProfile)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
