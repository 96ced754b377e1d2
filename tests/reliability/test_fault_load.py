"""Load with a database outage, on a real ``slotfill serve --workers 2`` logging to PostgreSQL
through a TCP proxy of the test's own.

The proxy is stopped once a fifth of the requests are answered and started again
``outage_s`` later; the last tenth of the requests wait until it is back, so every run has
requests before, during and after the outage. Expected: every request answered 200, and once
the spill files are replayed, exactly one ``request_log`` row per request.

The same run checks what must not be stored: the server runs with an admin token and
``redact_slots``, every request carries that token as a bearer token, and afterwards the token
is in no log line and no column, and no slot value is in any stored row or spill file.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    HOST,
    Load,
    log_rows,
    serve,
    server_env,
    sleep_until,
    spill_lines,
    tally,
    wait_for_rows,
)
from sqlalchemy.engine import make_url
from tcp_proxy import TcpProxy

from app.serving.request_log.rows import redact_text

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SIZES = [
    pytest.param(1_000, 16, 3.0, id="1k-c16-3s", marks=pytest.mark.timeout(300)),
    pytest.param(
        10_000, 32, 10.0, id="10k-c32-10s", marks=[pytest.mark.stress, pytest.mark.timeout(600)]
    ),
]


async def _load_with_outage(
    proxy: TcpProxy, spill_dir: Path, load: Load, outage_s: float
) -> dict[str, Any]:
    gate = asyncio.Event()
    load.gate, load.hold_from = gate, load.total * 9 // 10
    seen: dict[str, Any] = {}

    async def outage() -> None:
        try:
            assert await sleep_until(lambda: load.completed >= load.total // 5, 300)
            seen["answered_before"] = load.completed
            await asyncio.to_thread(proxy.stop)
            started = seen["stopped_at"] = time.monotonic()
            await asyncio.sleep(outage_s)
            seen["spilled"] = spill_lines(spill_dir)  # what waits on disk at the end of it
            await asyncio.to_thread(proxy.start)
            seen["outage_s"] = round(time.monotonic() - started, 1)
            seen["answered_during"] = load.completed - seen["answered_before"]
        finally:
            if not proxy.running:
                proxy.start()
            gate.set()

    started = time.monotonic()
    await asyncio.gather(load.run(), outage())
    seen["load_s"] = round(time.monotonic() - started, 1)
    return seen


def _keys_and_strings(value: Any) -> tuple[set[str], set[str]]:
    """Every dict key and every string value in a JSON document."""
    keys: set[str] = set()
    strings: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys.update(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            strings.add(item)
    return keys, strings


@pytest.mark.parametrize(("total", "concurrency", "outage_s"), SIZES)
def test_load_with_database_outage(
    total: int,
    concurrency: int,
    outage_s: float,
    reliability_store: Path,
    pg_log_url: str,
    admin_secret: str,
    tmp_path: Path,
    figures: Any,
) -> None:
    url = make_url(pg_log_url)
    spill_dir = tmp_path / "spill"
    with TcpProxy(url.host or HOST, url.port or 5432) as proxy:
        via_proxy = url.set(host=HOST, port=proxy.port).render_as_string(hide_password=False)
        env = server_env(
            reliability_store,
            via_proxy,
            spill_dir,
            admin_token=admin_secret,
            log_redaction="redact_slots",
            version_poll_seconds=0.5,
        )
        with serve(env, tmp_path / "server.log", workers=2) as server:
            bearer = {"Authorization": f"Bearer {admin_secret}"}
            load = Load(server.base_url, total, concurrency, headers=bearer)
            seen = asyncio.run(_load_with_outage(proxy, spill_dir, load, outage_s))
            started = time.monotonic()
            logged = wait_for_rows(pg_log_url, total, timeout=120)
            recovery_s = round(time.monotonic() - started, 1)
        server_log = server.log()

    statuses = tally(load.outcomes)
    rows = log_rows(pg_log_url)
    figures.record(
        f"fault run: {total:,} requests @ {concurrency}, {outage_s:g}s DB outage",
        requests_sent=len(load.outcomes),
        failed=len(load.outcomes) - statuses["200"],
        failures=[
            f"#{o.index} {o.route} {o.error} {o.detail or ''}: sent "
            f"{o.started_at - seen['stopped_at']:+.1f}s from the outage start, "
            f"failed after {o.done_at - o.started_at:.1f}s"
            for o in load.outcomes
            if o.status != 200
        ][:5],
        answered_during_outage=seen["answered_during"],
        rows_on_disk_at_outage_end=len(seen["spilled"]),
        rows_logged=len(rows),
        rows_lost=total - len(rows),
        load_s=seen["load_s"],
        rows_complete_after_s=recovery_s,
        workers_restarted=server_log.count(" died"),
    )

    # Zero failed requests, and exactly one row per request once the spill files are replayed.
    assert statuses == {"200": total}, statuses.most_common(5)
    assert seen["answered_during"] > 0 and seen["spilled"], "the outage overlapped no request"
    assert logged == len(rows) == total
    assert not list(spill_dir.glob("spill-*.jsonl")), "spill files left after recovery"
    assert "database unavailable" in server_log  # the writer noticed the outage
    by_route = {
        r: sum(1 for row in rows if row["route"] == r) for r in {o.route for o in load.outcomes}
    }
    assert by_route == {r: sum(1 for o in load.outcomes if o.route == r) for r in by_route}, (
        by_route
    )
    answered = {o.request_id: o for o in load.outcomes if o.request_id}
    assert len(answered) == sum(1 for o in load.outcomes if o.route != "/model/parse")
    assert answered.keys() <= {row["request_id"] for row in rows}

    # Redaction: the stored text is the served text with every slot span replaced, and the
    # stored response keeps slot names and offsets but no values, text or tokens (in the
    # database and in the spill files the outage left).
    slot_values = 0
    for row in rows + [json.loads(line) for line in seen["spilled"]]:
        assert row["text_mode"] == "redact_slots"
        keys, strings = _keys_and_strings(row["response"])
        assert not keys & {"value", "text", "tokens"}, row["response"]
        outcome = answered.get(row["request_id"])
        if outcome is None:
            continue
        results = outcome.results or []
        expected = "\n".join(redact_text(r["text"], r["slots"], "redact_slots") for r in results)
        assert row["text"] == expected
        for result in results:
            for slot in result["slots"]:
                slot_values += 1
                assert slot["value"] not in strings
                if slot["value"] not in expected:  # e.g. "two" is not also elsewhere in it
                    assert slot["value"] not in row["text"]
    assert slot_values > 0, "no slots were predicted: the redaction check proved nothing"

    # The admin token travelled with every request; it is stored and logged nowhere.
    assert admin_secret not in server_log
    assert not [row["id"] for row in rows if admin_secret in json.dumps(row, default=str)]
    assert all(admin_secret not in line for line in seen["spilled"])
    figures.record(
        f"secrets and redaction: fault run of {total:,}",
        token_in_server_log=server_log.count(admin_secret),
        token_in_rows=sum(admin_secret in json.dumps(r, default=str) for r in rows),
        slot_values_checked_absent=slot_values,
        spilled_rows_checked=len(seen["spilled"]),
    )
