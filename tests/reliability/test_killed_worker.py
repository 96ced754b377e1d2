"""A worker killed with SIGKILL under load loses no answered request: on a real
``slotfill serve --workers 2`` logging to PostgreSQL, one worker is killed once a third of the
requests are answered; the load goes on (uvicorn starts a new worker). Every request answered
200 must have its ``request_log`` row: the rows the killed worker still held in memory are
in its journal, which the next worker to scan the folder replays.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from reliability_support import Load, log_rows, serve, server_env, sleep_until, tally

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SIZES = [
    pytest.param(600, 8, id="600-c8", marks=pytest.mark.timeout(400)),
    pytest.param(5_000, 32, id="5k-c32", marks=[pytest.mark.stress, pytest.mark.timeout(600)]),
]


def _workers(supervisor: int) -> list[int]:
    """The uvicorn workers of ``supervisor``: its children (forked, so their command line is
    the supervisor's), not multiprocessing's resource tracker should one run."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == supervisor and b"resource_tracker" not in command:
            found.append(int(entry.name))
    return sorted(found)


async def _load_with_kill(load: Load, victim: int) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def kill() -> None:
        assert await sleep_until(lambda: load.completed >= load.total // 3, 300)
        seen["answered_before_kill"] = load.completed
        os.kill(victim, signal.SIGKILL)

    await asyncio.gather(load.run(), kill())
    return seen


def _wait_for_ids(url: str, want: set[str], timeout_s: float) -> set[str]:
    """The logged request ids once they include ``want``, or after ``timeout_s``."""

    async def poll() -> set[str]:
        logged: set[str] = set()

        def done() -> bool:
            nonlocal logged
            logged = {row["request_id"] for row in log_rows(url)}
            return want <= logged

        await sleep_until(done, timeout_s)
        return logged

    return asyncio.run(poll())


@pytest.mark.parametrize(("total", "concurrency"), SIZES)
def test_no_answered_request_is_lost_when_a_worker_is_killed(
    total: int,
    concurrency: int,
    reliability_store: Path,
    pg_log_url: str,
    tmp_path: Path,
    figures: Any,
) -> None:
    env = server_env(reliability_store, pg_log_url, tmp_path / "spill")
    with serve(env, tmp_path / "server.log", workers=2) as server:
        workers = _workers(server.proc.pid)
        assert len(workers) == 2, workers
        # Every answer names its request id (Rasa's answer has none, so no Rasa requests).
        load = Load(server.base_url, total, concurrency, rasa_every=0, timeout_s=60)
        seen = asyncio.run(_load_with_kill(load, workers[0]))
        answered = {o.request_id for o in load.outcomes if o.status == 200 and o.request_id}
        logged = _wait_for_ids(pg_log_url, answered, timeout_s=120)
        server_log = server.log()

    statuses = tally(load.outcomes)
    after_kill = sum(1 for o in load.outcomes[seen["answered_before_kill"] :] if o.status == 200)
    figures.record(
        f"worker killed (SIGKILL) under load: {total:,} requests @ {concurrency}",
        requests_sent=len(load.outcomes),
        answered_2xx=len(answered),
        answered_before_kill=seen["answered_before_kill"],
        outcomes=dict(sorted(statuses.items())),
        rows_logged=len(logged),
        answered_without_row=len(answered - logged),
        rows_without_2xx_answer=len(logged - answered),
    )
    assert answered - logged == set(), server_log[-3000:]
    assert after_kill > 0, statuses  # the load went on past the kill
    assert sum(n for s, n in statuses.items() if s.startswith("5")) == 0, statuses
