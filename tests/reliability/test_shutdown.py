"""Graceful shutdown: SIGTERM to ``slotfill serve --workers 2`` half-way through a load.

Requests the server had taken in complete (answered 200), later ones are refused at connect
(the supervisor closes its listening socket first: none is reset mid-request, and none is
answered with an error), the request-log queue is flushed before the workers exit,
and the rows are exactly the answered requests: none lost, none for a request that was not
answered. Half the requests are batches, so that several are in flight at the signal.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from reliability_support import Load, Server, log_rows, serve, server_env, sleep_until, tally

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SIZES = [
    pytest.param(400, 16, id="400-c16", marks=pytest.mark.timeout(240)),
    pytest.param(4_000, 32, id="4k-c32", marks=[pytest.mark.stress, pytest.mark.timeout(400)]),
]


async def _load_then_sigterm(server: Server, load: Load) -> float:
    async def terminate() -> float:
        assert await sleep_until(lambda: load.completed >= load.total // 2, 300)
        server.sigterm()
        sent_at = time.monotonic()
        print(f"SIGTERM sent at {datetime.now(UTC).isoformat()}")  # to align with the log
        return sent_at

    _, sent_at = await asyncio.gather(load.run(), terminate())
    return sent_at


@pytest.mark.parametrize(("total", "concurrency"), SIZES)
def test_sigterm_under_load_loses_no_row(
    total: int,
    concurrency: int,
    reliability_store: Path,
    pg_log_url: str,
    tmp_path: Path,
    figures: Any,
) -> None:
    spill_dir = tmp_path / "spill"
    env = server_env(reliability_store, pg_log_url, spill_dir)
    with serve(env, tmp_path / "server.log", workers=2) as server:
        # Short timeouts: after the signal, new connections wait in the listen backlog
        # until the supervisor exits; they are not served either way.
        load = Load(server.base_url, total, concurrency, batch_every=2, rasa_every=0)
        load.timeout_s = 60
        term_at = asyncio.run(_load_then_sigterm(server, load))
        exit_code = server.wait(90)
    server_log = server.log()
    rows = log_rows(pg_log_url)

    answered = {o.request_id for o in load.outcomes if o.status == 200}
    after_term = [o for o in load.outcomes if o.status == 200 and o.done_at > term_at]
    logged = {row["request_id"] for row in rows}
    statuses = tally(load.outcomes)
    figures.record(
        f"SIGTERM under load: {total:,} requests @ {concurrency}",
        requests_sent=len(load.outcomes),
        answered_200=len(answered),
        answered_after_sigterm=len(after_term),
        not_served=len(load.outcomes) - len(answered),
        not_served_by_error={k: n for k, n in statuses.items() if k != "200"},
        rows_logged=len(rows),
        rows_lost=len(answered - logged),
        rows_without_answer=len(logged - answered),
        exit_code=exit_code,
    )

    assert exit_code == 0, server_log[-3000:]
    assert "Application shutdown complete" in server_log
    # Only answered (200) or refused at connect: no 5xx, no request reset half-way.
    unexpected = [
        f"#{o.index} {o.route} sent {o.started_at - term_at:+.3f}s, "
        f"ended {o.done_at - term_at:+.3f}s after SIGTERM: {o.detail or o.status}"
        for o in load.outcomes
        if o.status != 200 and o.error != "ConnectError"
    ]
    if unexpected:  # in full on stdout: an assertion message is cut short
        print(*unexpected, server_log[-6000:], sep="\n")
    assert set(statuses) <= {"200", "ConnectError"}, (statuses, unexpected)
    assert len(after_term) > 0, "nothing was in flight at the signal"
    assert len(rows) == len(logged) == len(answered)
    assert logged == answered  # nothing lost, nothing logged that was not answered
    assert not list(spill_dir.glob("spill-*.jsonl")), "rows left on disk at exit"
    assert "dropped" not in server_log, server_log[-3000:]
