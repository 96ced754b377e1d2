"""The HTTP service end to end: real uvicorn, real models, request log in PostgreSQL.

For each worker count (``--workers``, default 1 and 2) this starts two servers in turn on a
free loopback port, each with the same uvicorn settings (``--log-level warning``, no access
log, uvloop + httptools when installed):

* ``slotfill``: ``python -m slotfill.cli serve`` with a temporary model store holding the
  ``--tagger-artifact`` as ``atis/<version>`` and the ``--sentiment-artifact`` as
  ``airline/<version>``, logging every request to PostgreSQL;
* ``bare``: :func:`bare_app`, a FastAPI app whose ``POST /v1/parse`` returns a constant
  parse-shaped dict without reading the body: what uvicorn + FastAPI alone can do on this
  machine (the framework ceiling).

It measures cold start (``Popen`` -> first ``/readyz`` 200, polled every 20 ms; and until
every worker has answered), resident memory of each worker, and then drives ``POST
/v1/parse`` with ATIS valid utterances (cycled) at each ``--concurrency`` from this process:
an asyncio client with one persistent HTTP/1.1 connection per concurrent slot (uvloop when
installed), ``--warmup-seconds`` of untimed requests first (the first requests after
start-up run slower), then ``--requests`` timed ones, bounded by ``--max-seconds``. After
each slotfill load it waits for the log writer and checks that ``request_log`` gained exactly
one row per request sent.

The client shares the CPUs with the servers: on a 2-core machine its cost is part of every
number (the table shows its CPU share), for slotfill and bare alike.

    python -m benchmarks.service --tagger-artifact DIR --sentiment-artifact DIR
    python -m benchmarks.service --quick --tagger-artifact DIR --sentiment-artifact DIR

Only the standard library, FastAPI and :mod:`benchmarks.servers` (which starts and stops the
servers and counts the log rows, as the reliability tests do) are imported at module level, so
that the ``bare`` workers (which import this module) load no torch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from benchmarks import servers

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL

NAME = "service"
REPO_ROOT, HOST = servers.REPO_ROOT, servers.HOST
SYSTEMS = ("bare", "slotfill")
PG_ADMIN = {"username": "postgres", "host": "127.0.0.1", "port": 5432, "database": "postgres"}
# Issue 18's targets (request log on PostgreSQL).
TARGETS = {
    "p50_ms_c1": 2.5,  # slotfill p50 at concurrency 1
    "rps_2_workers": 1500.0,  # slotfill req/s, 2 workers, highest concurrency (issue: 32)
    "cold_start_s": 1.5,  # Popen -> first /readyz 200
    "rss_mb": 300.0,  # VmRSS of each worker after the load
}
# Option -> (default, default with --quick).
RUN_DEFAULTS: dict[str, tuple[Any, Any]] = {
    "requests": (5000, 300),
    "warmup_seconds": (5.0, 2.0),
    "max_seconds": (300.0, 60.0),
}

# What the bare endpoint returns: the shape and about the size of a real parse response.
BARE_RESPONSE: dict[str, Any] = {
    "text": "show me flights from boston to denver",
    "tokens": [
        {"text": w, "start": s, "end": s + len(w)}
        for w, s in (
            ("show", 0),
            ("me", 5),
            ("flights", 8),
            ("from", 16),
            ("boston", 21),
            ("to", 28),
            ("denver", 31),
        )
    ],
    "intent": {"name": "atis_flight", "confidence": 0.98},
    "intent_ranking": [
        {"name": "atis_flight", "confidence": 0.98},
        {"name": "atis_airfare", "confidence": 0.01},
        {"name": "atis_ground_service", "confidence": 0.005},
    ],
    "slots": [
        {"slot": "fromloc.city_name", "value": "boston", "start": 21, "end": 27, "confidence": 1.0},
        {"slot": "toloc.city_name", "value": "denver", "start": 31, "end": 37, "confidence": 1.0},
    ],
    "sentiment": {
        "label": "neutral",
        "confidence": 0.9,
        "scores": {"negative": 0.05, "neutral": 0.9, "positive": 0.05},
    },
    "model": {
        "name": "atis",
        "version": "20260101T000000000000Z",
        "ref": "atis@20260101T000000000000Z",
        "sentiment": "airline@20260101T000000000000Z",
    },
    "request_id": "00000000000000000000000000000000",
}


def bare_app() -> FastAPI:
    """The framework ceiling: ``POST /v1/parse`` returns :data:`BARE_RESPONSE`; ``GET
    /readyz`` answers at once with the worker's pid, as slotfill's does once it is ready.

    Served by ``uvicorn benchmarks.service:bare_app --factory``.
    """
    app = FastAPI(title="bare")

    @app.post("/v1/parse")
    async def parse() -> dict[str, Any]:
        return BARE_RESPONSE

    @app.get("/readyz")
    async def readyz() -> dict[str, object]:
        return {"status": "ready", "pid": os.getpid()}

    return app


# --------------------------------------------------------------------------- load client
@dataclass
class LoadStats:
    """What one load run saw. ``sent`` counts requests whose bytes were written."""

    sent: int = 0
    ok: int = 0
    latencies_s: list[float] = field(default_factory=list)  # 2xx responses only
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    capped: bool = False
    server_cpu_s: dict[int, float] = field(default_factory=dict)  # by pid, meanwhile
    client_cpu_s: float = 0.0  # CPU time of this process meanwhile

    @property
    def failures(self) -> int:
        """Requests sent without a 2xx answer (HTTP errors, I/O errors, timeouts)."""
        return self.sent - self.ok


class _Connection:
    """One keep-alive HTTP/1.1 connection: write a request, read status + framed body."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, payload: bytes) -> int:
        """Send ``payload`` (a complete request) and return the response status."""
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = self.reader
        self.writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            await reader.readexactly(int(lower[at + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await reader.read()  # no framing: the body runs to the end of the connection
            self.close()
        if b"\r\nconnection: close" in lower:
            self.close()
        return status

    def close(self) -> None:
        """Drop the connection; the next request opens a new one."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _requests(host: str, port: int, texts: Sequence[str]) -> list[bytes]:
    """Complete ``POST /v1/parse`` requests, one per utterance."""
    out = []
    for text in texts:
        body = json.dumps({"text": text}).encode()
        out.append(
            b"POST /v1/parse HTTP/1.1\r\n"
            + f"Host: {host}:{port}\r\n".encode()
            + b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return out


async def _drive(
    connections: list[_Connection],
    payloads: Sequence[bytes],
    first: int,
    count: int,
    max_seconds: float,
    grace_s: float,
) -> LoadStats:
    """``count`` requests (payloads ``first``, ``first+1``, ... cycled) over the connections,
    one in flight per connection; no new request starts after ``max_seconds``, and requests
    still unanswered ``grace_s`` later count as timeouts."""
    stats = LoadStats()
    issued = 0
    start = time.perf_counter()
    deadline = start + max_seconds
    perf_counter = time.perf_counter

    async def slot(conn: _Connection) -> None:
        nonlocal issued
        while True:
            if issued >= count:
                return
            if perf_counter() > deadline:
                stats.capped = True
                return
            payload = payloads[(first + issued) % len(payloads)]
            issued += 1
            stats.sent += 1
            t0 = perf_counter()
            try:
                status = await conn.request(payload)
            except (OSError, EOFError, ValueError, asyncio.IncompleteReadError) as exc:
                conn.close()
                stats.errors[type(exc).__name__] += 1
                continue
            if 200 <= status < 300:
                stats.latencies_s.append(perf_counter() - t0)
                stats.ok += 1
            else:
                stats.errors[f"HTTP {status}"] += 1

    tasks = [asyncio.ensure_future(slot(c)) for c in connections]
    _, pending = await asyncio.wait(tasks, timeout=max_seconds + grace_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        for conn in connections:
            conn.close()
        stats.capped = True
    stats.elapsed_s = time.perf_counter() - start
    unexplained = stats.failures - sum(stats.errors.values())
    if unexplained:
        stats.errors["timeout"] += unexplained
    return stats


def _event_loop_factory() -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    try:
        import uvloop
    except ImportError:
        return None, "asyncio"
    return uvloop.new_event_loop, f"uvloop {version('uvloop')}"


def run_load(
    port: int,
    texts: Sequence[str],
    concurrency: int,
    warmup_s: float,
    requests: int,
    max_seconds: float,
    server_pids: Sequence[int] = (),
) -> tuple[LoadStats, LoadStats]:
    """Warm-up (requests for ``warmup_s`` seconds) then ``requests`` timed ones on the same
    connections; ``(warmup, timed)`` statistics. The timed ones include the CPU time of
    ``server_pids`` and of this process meanwhile."""
    payloads = _requests(HOST, port, texts)
    loop_factory, _ = _event_loop_factory()

    async def both() -> tuple[LoadStats, LoadStats]:
        connections = [_Connection(HOST, port) for _ in range(concurrency)]
        try:
            warm = await _drive(connections, payloads, 0, sys.maxsize, warmup_s, 30.0)
            server_cpu, client_cpu = _cpu_seconds(server_pids), time.process_time()
            timed = await _drive(connections, payloads, warm.sent, requests, max_seconds, 30.0)
            after = _cpu_seconds(server_pids)
            timed.server_cpu_s = {p: after[p] - server_cpu.get(p, 0.0) for p in after}
            timed.client_cpu_s = time.process_time() - client_cpu
            return warm, timed
        finally:
            for conn in connections:
                conn.close()

    gc.collect()
    gc.disable()  # no collector pauses inside the measurement
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(both())
    finally:
        gc.enable()


# --------------------------------------------------------------------------- processes
def _memory_mb(pid: int) -> dict[str, float | None]:
    """VmRSS and VmHWM (``/proc/<pid>/status``) and PSS (``smaps_rollup``), in MB."""
    out: dict[str, float | None] = {"rss_mb": None, "hwm_mb": None, "pss_mb": None}
    keys = {"VmRSS:": "rss_mb", "VmHWM:": "hwm_mb", "Pss:": "pss_mb"}
    for name in ("status", "smaps_rollup"):
        with contextlib.suppress(OSError):
            for line in (Path("/proc") / str(pid) / name).read_text().splitlines():
                parts = line.split()
                if parts and parts[0] in keys and out[keys[parts[0]]] is None:
                    out[keys[parts[0]]] = int(parts[1]) / 1024  # kB -> MB
    return out


def _cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU time of each of ``pids`` so far (10 ms resolution, typically)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def start_server(
    system: str,
    workers: int,
    env: dict[str, str],
    log_dir: Path,
    start_timeout: float,
) -> servers.Server:
    """Start one server and wait until ``/readyz`` answers 200 from every worker."""
    port = servers.free_port()
    if system == "slotfill":
        command = servers.serve_command(port, workers, log_level="warning")
    else:
        command = [
            *(sys.executable, "-m", "uvicorn", "benchmarks.service:bare_app", "--factory"),
            *("--host", HOST, "--port", str(port), "--workers", str(workers)),
            *("--log-level", "warning", "--no-access-log"),  # as `slotfill serve`
            *("--timeout-graceful-shutdown", "30"),
        ]
    log_path = log_dir / f"{system}-w{workers}-{port}.log"
    return servers.start(command, port, workers, env, log_path, start_timeout, name=system)


def _log_issues(path: Path, limit: int = 20) -> list[str]:
    """Warning, error and traceback lines a server wrote."""
    marks = ("Traceback", "ERROR", "Error", "WARNING", "Warning", "Exception", "CRITICAL")
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if any(m in line for m in marks)][:limit]


# --------------------------------------------------------------------------- database
@contextlib.contextmanager
def bench_database(url_arg: str | None, env: dict[str, str]) -> Iterator[URL]:
    """``--database-url`` as given (it must be migrated already), else a fresh
    ``slotfill_bench_<hex>`` on 127.0.0.1:5432, migrated to head and dropped afterwards."""
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import OperationalError

    from benchmarks.common import log
    from benchmarks.servers import scratch_database

    if url_arg is not None:
        yield make_url(url_arg)
        return
    admin_url = URL.create("postgresql+psycopg", **PG_ADMIN)  # type: ignore[arg-type]
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database(admin_url, "slotfill_bench"))
        except OperationalError as exc:
            first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise SystemExit(
                f"error: cannot create a database on PostgreSQL at {PG_ADMIN['host']}:"
                f"{PG_ADMIN['port']} (user postgres): {first_line}; or pass --database-url"
            ) from exc
        log(f"created database {url.database}; alembic upgrade head")
        migrated = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=REPO_ROOT,
            env={**env, "SLOTFILL_DATABASE_URL": url.render_as_string(hide_password=False)},
            capture_output=True,
            text=True,
            check=False,
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"alembic upgrade head failed:\n{migrated.stderr[-3000:]}")
        yield url
    log(f"dropped database {url.database}")


# --------------------------------------------------------------------------- the benchmark
def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    from benchmarks.common import add_common_args

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.service",
        description="Latency, throughput, cold start and memory of the HTTP service under "
        "uvicorn (request log in PostgreSQL), next to a bare FastAPI endpoint.",
    )
    add_common_args(p)
    p.add_argument(
        "--tagger-artifact", type=Path, required=True, metavar="DIR", help="slot tagger artifact"
    )
    p.add_argument(
        "--sentiment-artifact",
        type=Path,
        required=True,
        metavar="DIR",
        help="sentiment artifact",
    )
    p.add_argument(
        "--requests",
        type=int,
        default=None,
        help="timed requests per load run (default 5000; --quick: 300)",
    )
    p.add_argument(
        "--warmup-seconds",
        type=float,
        default=None,
        metavar="S",
        help="untimed requests for S seconds first, on the same connections: the first "
        "requests after start-up run slower (default 5; --quick: 2)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 16],
        metavar="N",
        help="requests in flight (one connection each); default 1 16",
    )
    p.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        metavar="N",
        help="uvicorn worker processes; default 1 2",
    )
    p.add_argument(
        "--systems",
        nargs="+",
        choices=SYSTEMS,
        default=list(SYSTEMS),
        help="servers to run (default both; the ratio needs both)",
    )
    p.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="request-log database, already migrated, used by nothing else meanwhile "
        "(default: a fresh PostgreSQL database slotfill_bench_<hex> on 127.0.0.1:5432, "
        "migrated with alembic and dropped at the end)",
    )
    p.add_argument(
        "--torch-threads", type=int, default=1, help="SLOTFILL_TORCH_THREADS (default 1)"
    )
    p.add_argument(
        "--engine",
        choices=["numpy", "torch"],  # models.engine.ENGINES; not imported: no torch here
        default="numpy",
        help="SLOTFILL_ENGINE of the slotfill server (default numpy)",
    )
    p.add_argument(
        "--recurrent-weights",
        choices=["float16", "float32"],  # models.native.RECURRENT
        default="float16",
        help="SLOTFILL_RECURRENT_WEIGHTS of the slotfill server (default float16, the server's)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="wall-clock cap of one load run (default 300; --quick: 60)",
    )
    p.add_argument(
        "--start-timeout",
        type=float,
        default=120.0,
        help="seconds a server may take to answer /readyz (default 120)",
    )
    return p


def _check_artifact(path: Path, task: str) -> None:
    from models.artifact import load_manifest

    try:
        found = load_manifest(path).task
    except Exception as exc:
        raise SystemExit(f"error: {path} is not a readable artifact: {exc}") from exc
    if found != task:
        raise SystemExit(f"error: {path} is a {found} artifact, expected {task}")


def _server_env(
    store: Path,
    spill: Path,
    database_url: str,
    torch_threads: int,
    engine: str,
    recurrent_weights: str = "float16",
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLOTFILL_")}
    env.update(
        {
            "SLOTFILL_MODEL_STORE": str(store),
            "SLOTFILL_DEFAULT_MODEL": "atis",
            "SLOTFILL_MODELS": '["atis"]',
            "SLOTFILL_SENTIMENT_MODEL": "airline",
            "SLOTFILL_DATABASE_URL": database_url,
            "SLOTFILL_LOG_SPILL_DIR": str(spill),
            "SLOTFILL_TORCH_THREADS": str(torch_threads),
            "SLOTFILL_ENGINE": engine,
            "SLOTFILL_RECURRENT_WEIGHTS": recurrent_weights,
            "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
        }
    )
    return env


def _sanity_request(port: int, text: str) -> dict[str, Any]:
    """One parse over a fresh connection: its status and the keys of the answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(
            "POST",
            "/v1/parse",
            body=json.dumps({"text": text}),
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        body = json.loads(response.read() or b"null")
    finally:
        conn.close()
    if response.status != 200 or not isinstance(body, dict):
        raise RuntimeError(f"POST /v1/parse answered {response.status}: {body!r}")
    return {
        "status": response.status,
        "intent": body.get("intent"),
        "slots": body.get("slots"),
        "sentiment": (body.get("sentiment") or {}).get("label"),
        "model": body.get("model"),
    }


def _measure_server(
    server: servers.Server,
    args: argparse.Namespace,
    texts: Sequence[str],
    engine: Engine | None,
    expected_rows: list[int],
) -> list[dict[str, Any]]:
    """Every concurrency against one started server; one result dict each."""
    from benchmarks.common import latency_summary, log

    runs = []
    for concurrency in args.concurrency:
        # Rows of the requests before (the sanity request, earlier runs) must be in first.
        base = servers.wait_for_rows(engine, expected_rows[0])[0] if engine is not None else 0
        expected_before = expected_rows[0]
        log(
            f"{server.name}, {server.workers} worker(s), concurrency {concurrency}: "
            f"{args.warmup_seconds:g}s warm-up + {args.requests} requests"
        )
        warm, timed = run_load(
            server.port,
            texts,
            concurrency,
            args.warmup_seconds,
            args.requests,
            args.max_seconds,
            server.all_pids(),
        )
        server_cpu, client_cpu = sum(timed.server_cpu_s.values()), timed.client_cpu_s
        run: dict[str, Any] = {
            "system": server.name,
            "workers": server.workers,
            "concurrency": concurrency,
            "requests_sent": timed.sent,
            "ok": timed.ok,
            "failures": timed.failures,
            "errors": dict(timed.errors),
            "capped": timed.capped,
            "elapsed_s": timed.elapsed_s,
            "req_per_s": timed.ok / timed.elapsed_s if timed.elapsed_s > 0 else 0.0,
            "latency": latency_summary(timed.latencies_s) if timed.latencies_s else None,
            "server_cpu_ms_per_request": 1000 * server_cpu / timed.sent if timed.sent else None,
            "server_cpu_share": server_cpu / timed.elapsed_s if timed.elapsed_s > 0 else None,
            # How the load spread over the processes (master and workers).
            "server_cpu_s_by_pid": {str(p): round(c, 3) for p, c in timed.server_cpu_s.items()},
            "client_cpu_share": client_cpu / timed.elapsed_s if timed.elapsed_s > 0 else None,
            "warmup": {"sent": warm.sent, "failures": warm.failures, "errors": dict(warm.errors)},
            "memory_after": {str(p): _memory_mb(p) for p in server.worker_pids},
        }
        if engine is not None:
            expected = base + warm.sent + timed.sent
            rows, waited = servers.wait_for_rows(engine, expected)
            run["log"] = {
                "rows_before": base,
                "rows_expected_before": expected_before,
                "rows_after": rows,
                "warmup_sent": warm.sent,
                "timed_sent": timed.sent,
                "rows_for_timed": rows - base - warm.sent,
                "complete": rows == expected,
                "flush_wait_s": waited,
            }
            expected_rows[0] += warm.sent + timed.sent
        if timed.failures:
            log(f"  {timed.failures} failures: {dict(timed.errors)}")
        runs.append(run)
    return runs


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def evaluate_targets(
    runs: Sequence[dict[str, Any]], server_infos: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and pass/fail (None: not measured)."""
    out: list[dict[str, Any]] = []
    ours = [r for r in runs if r["system"] == "slotfill"]
    for r in ours:
        if r["concurrency"] == 1 and r["latency"]:
            p50 = r["latency"]["p50_ms"]
            out.append(
                {
                    "target": f"p50 <= {TARGETS['p50_ms_c1']:g} ms at concurrency 1 "
                    f"({r['workers']} worker(s))",
                    "value": p50,
                    "passed": p50 <= TARGETS["p50_ms_c1"],
                }
            )
    two = [r for r in ours if r["workers"] == 2 and r.get("req_per_s")]
    target = f"req/s >= {TARGETS['rps_2_workers']:g} with 2 workers"
    if two:
        r = max(two, key=lambda r: r["concurrency"])
        out.append(
            {
                "target": f"{target} (concurrency {r['concurrency']})",
                "value": r["req_per_s"],
                "passed": r["req_per_s"] >= TARGETS["rps_2_workers"],
            }
        )
    else:
        out.append({"target": target, "value": None, "passed": None})
    for s in server_infos:
        if s["system"] != "slotfill":
            continue
        out.append(
            {
                "target": f"cold start <= {TARGETS['cold_start_s']:g} s "
                f"({s['workers']} worker(s), first /readyz 200)",
                "value": s["cold_start_s"],
                "passed": s["cold_start_s"] <= TARGETS["cold_start_s"],
            }
        )
        rss = s["max_worker_rss_mb"]
        out.append(
            {
                "target": f"RSS <= {TARGETS['rss_mb']:g} MB per worker ({s['workers']} "
                "worker(s), after load)",
                "value": rss,
                "passed": None if rss is None else rss <= TARGETS["rss_mb"],
            }
        )
    for s in server_infos:
        if "rows_after_shutdown" in s:
            rows, expected = s["rows_after_shutdown"], s["rows_expected_after_shutdown"]
            out.append(
                {
                    "target": f"request_log rows == all requests sent, after shutdown "
                    f"({s['workers']} worker(s), warm-up and sanity requests included)",
                    "value": f"{rows}/{expected}",
                    "passed": rows == expected,
                }
            )
    for r in ours:
        log_check = r.get("log")
        if log_check:
            out.append(
                {
                    "target": f"request_log rows == requests sent ({r['workers']} worker(s), "
                    f"concurrency {r['concurrency']})",
                    "value": f"{log_check['rows_for_timed']}/{log_check['timed_sent']} "
                    f"(+{log_check['warmup_sent']} warm-up)",
                    "passed": bool(log_check["complete"]),
                }
            )
    return out


def _bench_server(
    system: str,
    workers: int,
    args: argparse.Namespace,
    texts: Sequence[str],
    env: dict[str, str],
    logs: Path,
    engine: Engine,
    expected_rows: list[int],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start one server, measure it at every concurrency, stop it; ``(server info, runs)``."""
    from benchmarks.common import log

    server = start_server(system, workers, env, logs, args.start_timeout)
    log(
        f"{system}, {workers} worker(s): first /readyz 200 after {server.cold_start_s:.2f}s, "
        f"all workers after {server.all_ready_s or float('nan'):.2f}s"
    )
    info: dict[str, Any] = {
        "system": system,
        "workers": workers,
        "cold_start_s": server.cold_start_s,
        "all_workers_ready_s": server.all_ready_s,
        "ready_pids": server.ready_pids,
        "worker_pids": server.worker_pids,
        "memory_after_start": {str(p): _memory_mb(p) for p in server.worker_pids},
    }
    logged = system == "slotfill"
    runs: list[dict[str, Any]] = []
    try:
        if logged:
            info["sanity"] = _sanity_request(server.port, texts[0])
            expected_rows[0] += 1
        runs = _measure_server(server, args, texts, engine if logged else None, expected_rows)
        info["memory_after_load"] = {str(p): _memory_mb(p) for p in server.worker_pids}
        if workers > 1:
            info["master_memory"] = _memory_mb(server.proc.pid)
    finally:
        info["stop"] = servers.stop(server)
    rss = [m["rss_mb"] for m in info.get("memory_after_load", {}).values() if m["rss_mb"]]
    info["max_worker_rss_mb"] = max(rss) if rss else None
    info["log_issues"] = _log_issues(server.log_path)
    for line in info["log_issues"]:
        log(f"  {system} server log: {line}")
    if logged:  # the writer flushes on shutdown: every request so far is a row now
        rows, _ = servers.wait_for_rows(engine, expected_rows[0], stall_s=3.0)
        info["rows_after_shutdown"] = rows
        info["rows_expected_after_shutdown"] = expected_rows[0]
        expected_rows[0] = rows
    return info, runs


def _memory_column(info: dict[str, Any], key: str) -> str | None:
    values = [m[key] for m in info.get("memory_after_load", {}).values() if m[key] is not None]
    return " ".join(f"{v:.0f}" for v in values) or None


def print_report(
    runs: Sequence[dict[str, Any]],
    server_infos: Sequence[dict[str, Any]],
    targets: Sequence[dict[str, Any]],
) -> None:
    """The load table, the cold start / memory table and the targets."""
    from benchmarks.common import format_table

    rows = []
    for r in runs:
        lat = r["latency"] or {}
        log_check = r.get("log")
        rows.append(
            [
                r["system"],
                r["workers"],
                r["concurrency"],
                r["requests_sent"],
                r["failures"],
                _fmt_ms(lat.get("p50_ms")),
                _fmt_ms(lat.get("p99_ms")),
                round(r["req_per_s"], 1),
                None if r["ratio_to_bare"] is None else f"{r['ratio_to_bare']:.2f}",
                _fmt_ms(r["server_cpu_ms_per_request"]),
                f"{r['client_cpu_share']:.0%}",
                f"{log_check['rows_for_timed']}/{log_check['timed_sent']}" if log_check else None,
            ]
        )
    headers = ["system", "workers", "conc", "requests", "failures", "p50_ms", "p99_ms", "req/s"]
    headers += ["vs_bare", "srv_cpu_ms/req", "client_cpu", "log_rows"]
    print(format_table(headers, rows))
    print()
    print(
        format_table(
            ["system", "workers", "cold_start_s", "all_ready_s", "rss_mb/worker", "pss_mb/worker"],
            [
                [
                    s["system"],
                    s["workers"],
                    f"{s['cold_start_s']:.2f}",
                    None if s["all_workers_ready_s"] is None else f"{s['all_workers_ready_s']:.2f}",
                    _memory_column(s, "rss_mb"),
                    _memory_column(s, "pss_mb"),
                ]
                for s in server_infos
            ],
        )
    )
    print("\ntargets:")
    for t in targets:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[t["passed"]]
        value = t["value"]
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        print(f"  {verdict}  {t['target']}: {shown}")


def main(argv: Sequence[str] | None = None) -> int:
    """Start the servers, drive them, print the tables and write the JSON."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from benchmarks.common import log, resolve_data_dir, write_results
    from models.store import new_version

    args = build_parser().parse_args(argv)
    for key, (full, quick) in RUN_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    if min(args.concurrency) < 1 or min(args.workers) < 1 or args.requests < 1:
        raise SystemExit("error: --requests, --concurrency and --workers must be at least 1")
    started = datetime.now(UTC)
    _check_artifact(args.tagger_artifact, "slots")
    _check_artifact(args.sentiment_artifact, "sentiment")
    seq_in = resolve_data_dir(args.data_dir) / "atis" / "valid" / "seq.in"
    texts = [t for t in (line.strip() for line in seq_in.read_text().splitlines()) if t]
    log(f"{len(texts)} utterances from {seq_in}")
    _, loop_name = _event_loop_factory()

    runs: list[dict[str, Any]] = []
    server_infos: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="slotfill_bench_") as tmp_name:
        tmp = Path(tmp_name)
        store, logs = tmp / "store", tmp / "logs"
        logs.mkdir()
        shutil.copytree(args.tagger_artifact, store / "atis" / new_version())
        shutil.copytree(args.sentiment_artifact, store / "airline" / new_version())
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("SLOTFILL_")}
        with bench_database(args.database_url, base_env) as url:
            url_text = url.render_as_string(hide_password=False)
            env = _server_env(
                store,
                tmp / "spill",
                url_text,
                args.torch_threads,
                args.engine,
                args.recurrent_weights,
            )
            engine = create_engine(url, poolclass=NullPool)
            try:
                expected_rows = [servers.count_rows(engine)]  # a list: the callees add to it
                for workers in args.workers:
                    for system in args.systems:
                        info, server_runs = _bench_server(
                            system, workers, args, texts, env, logs, engine, expected_rows
                        )
                        server_infos.append(info)
                        runs += server_runs
            finally:
                engine.dispose()

    bare = {(r["workers"], r["concurrency"]): r["req_per_s"] for r in runs if r["system"] == "bare"}
    for r in runs:
        ceiling = bare.get((r["workers"], r["concurrency"]))
        r["ratio_to_bare"] = (
            r["req_per_s"] / ceiling if r["system"] == "slotfill" and ceiling else None
        )
    targets = evaluate_targets(runs, server_infos)
    print_report(runs, server_infos, targets)

    notes = [
        "client: this process, asyncio with one keep-alive HTTP/1.1 connection per concurrent "
        f"request ({loop_name}); latency = write request -> last body byte read; "
        "p50/p99 over 2xx answers; req/s = 2xx answers / wall time of the timed part",
        f"each load: {args.warmup_seconds:g} s of untimed warm-up requests on the same "
        f"connections, then {args.requests} timed; utterances cycled from {seq_in}",
        "bare: benchmarks.service:bare_app, POST /v1/parse returns a constant dict (async, body "
        "not read); started with the same uvicorn options as `slotfill serve`",
        "vs_bare: slotfill req/s over bare req/s at the same workers and concurrency",
        "srv_cpu_ms/req: user+system CPU of the server processes during the timed part over "
        "requests sent; client_cpu: this process's CPU time over the wall time",
        "cold start: Popen -> first /readyz 200 (polled every 20 ms over new connections); "
        "all_ready: until every worker's pid has answered /readyz",
        "rss_mb/pss_mb: VmRSS / PSS of each worker after the last load; with one worker the "
        "uvicorn process itself is the worker",
        "log_rows: request_log rows added by the timed requests (rows after - rows before - "
        "warm-up requests), after waiting for the log writer",
    ]
    payload = {
        "tagger_artifact": str(args.tagger_artifact),
        "sentiment_artifact": str(args.sentiment_artifact),
        "utterances": {"source": str(seq_in), "count": len(texts)},
        "database": "fresh slotfill_bench_<hex> on 127.0.0.1:5432 (dropped)"
        if args.database_url is None
        else "given by --database-url",
        "client_event_loop": loop_name,
        "results": runs,
        "servers": server_infos,
        "targets": targets,
        "target_limits": TARGETS,
        "notes": notes,
    }
    path = write_results(NAME, args, started, payload)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
