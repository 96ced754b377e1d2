"""Real servers for benchmarks and tests: a ``slotfill serve`` (or any uvicorn command) on a
free loopback port, the request-log rows it wrote, and a scratch PostgreSQL database.

``benchmarks.service`` measures with these and ``tests/reliability`` tests with them (pytest
has the repository root on its path). Only the standard library is imported at module level,
so that the ``bare`` workers of ``benchmarks.service`` load neither torch nor SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
READY_POLL_S = 0.02


class ServerStartError(RuntimeError):
    """The server exited during start-up, or no worker answered ``/readyz`` in time."""


@dataclass
class Server:
    """A started uvicorn process group: the master, its workers and its cold start."""

    name: str  # what it serves: "slotfill", or a benchmark's baseline
    proc: subprocess.Popen[bytes]
    port: int
    workers: int
    log_path: Path
    cold_start_s: float = 0.0  # Popen -> first /readyz 200
    all_ready_s: float | None = None  # Popen -> every worker has answered /readyz
    ready_pids: list[int] = field(default_factory=list)
    worker_pids: list[int] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def all_pids(self) -> list[int]:
        """Master and workers (the master alone serves with one worker)."""
        return sorted({self.proc.pid, *self.worker_pids})

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log().splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def sigterm(self) -> None:
        """What an orchestrator sends: SIGTERM to the supervisor, which stops its workers."""
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        """Exit status, or None if still running after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_command(port: int, workers: int, log_level: str = "info") -> list[str]:
    """``slotfill serve`` on ``port`` with this interpreter."""
    return [
        *(sys.executable, "-m", "slotfill.cli", "serve", "--host", HOST, "--port", str(port)),
        *("--workers", str(workers), "--log-level", log_level),
    ]


def get_readyz(port: int, timeout: float) -> tuple[int, dict[str, Any] | None]:
    """Status and JSON body of ``GET /readyz`` over a new connection."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/readyz", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
        try:
            data = json.loads(body) if response.status == 200 else None
        except ValueError:
            data = None
        return response.status, data
    finally:
        conn.close()


def start(
    command: Sequence[str],
    port: int,
    workers: int,
    env: dict[str, str],
    log_path: Path,
    timeout: float,
    name: str = "slotfill",
) -> Server:
    """Start ``command`` (listening on ``port``) in its own process group and poll ``/readyz``
    until every worker's pid has answered, or ``timeout`` passes with at least one ready.
    ``ServerStartError`` (the server stopped) if it exits first or none is ready in time."""
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(command),
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to kill the workers if need be
        )
    server = Server(name, proc, port, workers, log_path)
    deadline = started + timeout
    pids: set[int] = set()
    try:
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise ServerStartError(
                    f"{name} server exited with status {proc.returncode} during start-up:\n"
                    + server.log_tail()
                )
            try:
                status, data = get_readyz(port, max(deadline - time.perf_counter(), 0.1))
            except OSError:
                status, data = 0, None
            now = time.perf_counter()
            if status == 200:
                if not pids:
                    server.cold_start_s = now - started
                if data and isinstance(data.get("pid"), int):
                    pids.add(data["pid"])
                if len(pids) >= workers:
                    server.all_ready_s = now - started
                    break
            time.sleep(READY_POLL_S)
        else:
            if not pids:
                raise ServerStartError(
                    f"{name} server: no /readyz 200 within {timeout:.0f}s:\n" + server.log_tail()
                )
    except BaseException:
        stop(server)
        raise
    server.ready_pids = sorted(pids)
    if workers == 1:
        server.worker_pids = [proc.pid]
    else:  # the supervisor's children (forked: app.http_server), not a resource tracker
        server.worker_pids = [
            p for p in _children(proc.pid) if "resource_tracker" not in _cmdline(p)
        ]
    return server


def stop(server: Server, timeout: float = 45.0) -> dict[str, Any]:
    """SIGTERM, wait; SIGKILL the process group if it does not exit in ``timeout``."""
    started = time.perf_counter()
    killed = False
    if server.alive():
        server.sigterm()
        if server.wait(timeout) is None:
            killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
    return {
        "shutdown_s": time.perf_counter() - started,
        "returncode": server.proc.returncode,
        "killed": killed,
    }


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``, from ``/proc``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return sorted(out)


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --------------------------------------------------------------------------- the request log


def count_rows(target: Engine | str) -> int:
    """Rows in ``request_log`` (``target``: an engine, or a database URL)."""
    from sqlalchemy import func, select

    from app.db import RequestLog, make_engine

    engine = make_engine(target) if isinstance(target, str) else target
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(RequestLog)).scalar_one())
    finally:
        if isinstance(target, str):
            engine.dispose()


def wait_for_rows(
    target: Engine | str, expected: int, stall_s: float = 10.0, cap_s: float = 180.0
) -> tuple[int, float]:
    """Poll ``request_log`` until it holds ``expected`` rows and has stayed so for 0.5 s, or
    stopped changing for ``stall_s``, or ``cap_s`` passed; ``(rows, seconds waited)``."""
    started = time.perf_counter()
    last, changed = count_rows(target), started
    while True:
        now = time.perf_counter()
        if now - started > cap_s:
            return last, now - started
        if last >= expected and now - changed >= 0.5:
            return last, now - started
        if now - changed >= stall_s:
            return last, now - started
        time.sleep(0.1)
        rows = count_rows(target)
        if rows != last:
            last, changed = rows, time.perf_counter()


# --------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def scratch_database(admin_url: URL, prefix: str) -> Iterator[URL]:
    """URL of a new PostgreSQL database ``<prefix>_<hex>``, dropped (connections and all)
    when the block ends. For tests and benchmarks that need a real, isolated server.

    ``admin_url`` must allow CREATE DATABASE; if the server cannot be reached or refuses,
    ``sqlalchemy.exc.OperationalError`` propagates and nothing is left behind.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from app.db.engine import PG_CONNECT_TIMEOUT_S

    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(
        admin_url,
        isolation_level="AUTOCOMMIT",  # CREATE/DROP DATABASE cannot run in a transaction
        poolclass=NullPool,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
