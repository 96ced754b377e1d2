"""Request log: redaction, and the background writer with its spill-to-disk fallback."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import URL

from app.config import RedactionMode
from app.db import Base, RequestLog, count_request_logs, get_request_log, make_engine
from app.db import make_session_factory as sessions
from app.metrics import Metrics
from app.serving.request_log.rows import redact_text
from app.serving.request_log.writer import RequestLogWriter

pytestmark = pytest.mark.timeout(30)

# A port nothing listens on: connecting fails at once with "connection refused".
UNREACHABLE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/x"
WaitUntil = Callable[..., bool]

TEXT = "fly from boston to new york"
SLOTS = [
    {"slot": "to_city", "start": 19, "end": 27},  # unsorted on purpose
    {"slot": "from_city", "start": 9, "end": 15},
]


def make_row(i: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": f"req-{i:05d}",
        "route": "/v1/parse",
        "client": "127.0.0.1",
        "text": f"utterance {i}",
        "text_mode": "full",
        "response": {"intent": "book", "slots": [{"slot": "city", "score": 0.5}], "n": i},
        "model_versions": {"tagger": "demo@3", "sentiment": None},
        "latency_ms": 1.25 + i,
        "status_code": 200,
    }
    row.update(overrides)
    return row


def stored_ids(engine: Engine) -> list[str]:
    with sessions(engine)() as session:
        return list(session.scalars(select(RequestLog.request_id).order_by(RequestLog.request_id)))


def count(engine: Engine) -> int:
    with sessions(engine)() as session:
        return count_request_logs(session)


def spill_files(spill_dir: Path) -> list[Path]:
    return sorted(spill_dir.glob("spill-*.jsonl")) if spill_dir.exists() else []


@pytest.fixture
def unreachable_engine() -> Iterator[Engine]:
    eng = make_engine(UNREACHABLE_URL)
    try:
        yield eng
    finally:
        eng.dispose()


# --------------------------------------------------------------------------- redact_text


def test_redact_text_modes() -> None:
    assert redact_text(TEXT, SLOTS, RedactionMode.full) == TEXT
    assert redact_text(TEXT, SLOTS, "redact_slots") == "fly from <from_city> to <to_city>"
    digest = redact_text(TEXT, SLOTS, RedactionMode.hash)
    assert digest == hashlib.sha256(TEXT.encode()).hexdigest()
    assert redact_text(TEXT, [], "redact_slots") == TEXT


def test_redact_text_overlapping_and_out_of_range_spans() -> None:
    spans = [
        {"slot": "a", "start": 0, "end": 5},
        {"slot": "b", "start": 3, "end": 8},  # overlaps a: the rest of it is still removed
        {"slot": "c", "start": 20, "end": 99},  # clipped to the text
    ]
    assert redact_text("0123456789abcdefghijXYZ", spans, "redact_slots") == "<a><b>89abcdefghij<c>"


def test_redact_text_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        redact_text(TEXT, [{"slot": "x", "start": 1}], "redact_slots")
    with pytest.raises(ValueError):
        redact_text(TEXT, SLOTS, "rot13")


# --------------------------------------------------------------------------- writer


def test_submitted_rows_are_written(log_engine: Engine, tmp_path: Path) -> None:
    writer = RequestLogWriter(log_engine, queue_size=100, batch_size=7, spill_dir=tmp_path / "s")
    writer.start()
    created = datetime(2026, 5, 4, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    rows = [make_row(i, created_at=created + timedelta(seconds=i)) for i in range(20)]
    rows.append(make_row(20, client=None, response=None, model_versions=None))
    for row in rows:
        writer.submit(row)
    assert writer.stop(timeout=10)

    assert count(log_engine) == 21
    assert (writer.written_rows, writer.dropped_rows, writer.spilled_rows) == (21, 0, 0)
    assert writer.queue_depth == 0
    with sessions(log_engine)() as session:
        got = get_request_log(session, "req-00003")
        assert got is not None
        assert got.created_at == created + timedelta(seconds=3)
        assert got.created_at.tzinfo is not None
        assert got.response == rows[3]["response"]
        assert got.model_versions == {"tagger": "demo@3", "sentiment": None}
        assert (got.route, got.client, got.latency_ms, got.status_code) == (
            "/v1/parse",
            "127.0.0.1",
            4.25,
            200,
        )
        last = get_request_log(session, "req-00020")
        assert last is not None
        assert last.response is None and last.client is None
        # created_at defaults to submit time
        assert abs(last.created_at - datetime.now(UTC)) < timedelta(minutes=1)
        assert get_request_log(session, "nope") is None
    assert spill_files(tmp_path / "s") == []


@pytest.mark.parametrize("mode", list(RedactionMode))
def test_redaction_modes_store_what_they_should(
    log_engine: Engine, tmp_path: Path, mode: RedactionMode
) -> None:
    writer = RequestLogWriter(log_engine, spill_dir=tmp_path / "s")
    writer.start()
    writer.submit(make_row(1, text=redact_text(TEXT, SLOTS, mode), text_mode=mode.value))
    assert writer.stop()

    with sessions(log_engine)() as session:
        got = get_request_log(session, "req-00001")
    assert got is not None
    assert got.text_mode == mode.value
    if mode is RedactionMode.full:
        assert got.text == TEXT
    elif mode is RedactionMode.redact_slots:
        assert got.text == "fly from <from_city> to <to_city>"
        assert "boston" not in got.text and "new york" not in got.text
    else:
        assert got.text == hashlib.sha256(TEXT.encode()).hexdigest()


def test_queue_overflow_counts_dropped_rows(
    log_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.request_log")
    writer = RequestLogWriter(log_engine, queue_size=3, spill_dir=tmp_path / "s")
    for i in range(6):  # not started yet: nothing drains the queue
        writer.submit(make_row(i))
    assert writer.queue_depth == 3
    assert writer.dropped_rows == 3
    drop_logs = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drop_logs) == 1, "drop warnings are rate-limited"
    assert "queue full" in drop_logs[0].getMessage()

    assert writer.stop()  # starts the thread to flush what was queued
    assert count(log_engine) == 3
    assert writer.written_rows == 3
    assert writer.dropped_rows == 3
    # The drops the rate limit held back are reported at shutdown.
    assert "dropped 2 more row(s)" in caplog.text


def test_stop_flushes_the_queue(log_engine: Engine, tmp_path: Path) -> None:
    writer = RequestLogWriter(log_engine, queue_size=1000, batch_size=25, spill_dir=tmp_path / "s")
    writer.start()
    for i in range(400):
        writer.submit(make_row(i))
    assert writer.stop(timeout=10)
    assert count(log_engine) == 400
    assert (writer.written_rows, writer.queue_depth, writer.dropped_rows) == (400, 0, 0)

    writer.submit(make_row(999))  # after stop: counted, never raises
    assert writer.dropped_rows == 1


def test_bad_rows_do_not_sink_their_batch(log_engine: Engine, tmp_path: Path) -> None:
    writer = RequestLogWriter(log_engine, batch_size=50, spill_dir=tmp_path / "s")
    bad_row = make_row(1)
    del bad_row["route"]  # NOT NULL column
    writer.submit(make_row(0))
    writer.submit(bad_row)
    writer.submit(make_row(2, response={"x": object()}))  # not JSON: stored as a marker
    writer.submit(42)  # type: ignore[arg-type]  # not a mapping: dropped by submit
    writer.submit(make_row(3))
    writer.submit(make_row(3, text="duplicate request id: skipped, not an error"))
    writer.start()
    assert writer.stop()

    assert stored_ids(log_engine) == ["req-00000", "req-00002", "req-00003"]
    with sessions(log_engine)() as session:
        unserializable = get_request_log(session, "req-00002")
        assert unserializable is not None
        assert unserializable.response == {"truncated": True, "unserializable": True}
    assert writer.written_rows == 3
    assert writer.rejected_rows == 1  # the row without a route: kept aside, not lost
    [kept] = (tmp_path / "s").glob("rejected-*.jsonl")
    assert json.loads(kept.read_text())["request_id"] == "req-00001"
    assert writer.dropped_rows == 1
    assert writer.spilled_rows == 0


def test_client_input_is_bounded_to_its_column(log_engine: Engine, tmp_path: Path) -> None:
    """A 200-character X-Forwarded-For in ``client`` (128 characters): PostgreSQL refused
    the row and it was lost; now it is cut with a marker and stored, as is a NUL."""
    writer = RequestLogWriter(log_engine, spill_dir=tmp_path / "s")
    writer.submit(make_row(0, client="203.0.113.7, " * 16))
    writer.submit(make_row(1, text="nul \x00 inside", route="/v1/parse" + "x" * 100))
    writer.start()
    assert writer.stop()
    assert (writer.written_rows, writer.rejected_rows, writer.dropped_rows) == (2, 0, 0)
    with sessions(log_engine)() as session:
        long_client = get_request_log(session, "req-00000")
        nul = get_request_log(session, "req-00001")
    assert long_client is not None and nul is not None
    assert long_client.client is not None and len(long_client.client) == 128
    assert long_client.client.endswith("…[truncated]")
    assert long_client.client.startswith("203.0.113.7, 203.0.113.7")
    assert nul.text == "nul \ufffd inside"
    assert len(nul.route) == 64 and nul.route.endswith("…[truncated]")


def test_a_row_the_database_refuses_is_kept_aside_and_counted(
    log_engine: Engine, tmp_path: Path
) -> None:
    """A status code out of the column's range: both databases refuse it."""
    writer = RequestLogWriter(log_engine, batch_size=10, spill_dir=tmp_path / "s")
    writer.submit(make_row(0))
    writer.submit(make_row(1, status_code=2**70))
    writer.submit(make_row(2))
    writer.start()
    assert writer.stop()
    assert stored_ids(log_engine) == ["req-00000", "req-00002"]
    assert (writer.rejected_rows, writer.dropped_rows) == (1, 0)
    [kept] = (tmp_path / "s").glob("rejected-*.jsonl")
    assert json.loads(kept.read_text())["status_code"] == 2**70
    assert kept.stat().st_mode & 0o777 == 0o600
    exposition = generate_latest(Metrics(lambda: None, lambda: writer).registry).decode()
    assert "slotfill_log_rejected_rows_total 1.0" in exposition
    assert "slotfill_log_dropped_rows_total 0.0" in exposition


def test_unreachable_db_spills_and_next_process_writes_them_once(
    unreachable_engine: Engine, log_engine: Engine, tmp_path: Path, wait_until: WaitUntil
) -> None:
    spill_dir = tmp_path / "spill"
    created = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    rows = [
        make_row(i, created_at=created, response={"text": "zürich ✈", "p": [0.1, 1e-9]})
        for i in range(5)
    ]

    down = RequestLogWriter(unreachable_engine, spill_dir=spill_dir, retry_min_s=0.05)
    down.start()
    for row in rows:
        down.submit(row)
    assert wait_until(lambda: down.spilled_rows == 5)
    [spill] = spill_files(spill_dir)
    assert len(spill.read_text().splitlines()) == 5
    assert spill.stat().st_mode & 0o077 == 0, "spill files hold user text: owner-only"

    # A writer with a working DB must not take the file while its owner is alive.
    up = RequestLogWriter(log_engine, spill_dir=spill_dir)
    up.start()
    up.submit(make_row(100))
    assert wait_until(lambda: up.written_rows == 1)
    assert spill_files(spill_dir) == [spill]
    assert up.stop()

    assert down.stop(timeout=10)
    assert (down.written_rows, down.spilled_rows, down.dropped_rows) == (0, 5, 0)
    assert spill.exists(), "rows that could not be written stay on disk"

    # Simulate a replay that died after committing part of the file.
    with sessions(log_engine)() as session, session.begin():
        session.add(RequestLog(**rows[0]))

    # The next process finds the orphaned file, writes it, and deletes it.
    nxt = RequestLogWriter(log_engine, spill_dir=spill_dir)
    nxt.start()
    assert wait_until(lambda: spill_files(spill_dir) == [])
    assert nxt.stop()
    assert nxt.written_rows == 4  # the committed row is skipped, not duplicated
    assert stored_ids(log_engine) == [*(r["request_id"] for r in rows), "req-00100"]
    with sessions(log_engine)() as session:
        got = get_request_log(session, "req-00004")
        assert got is not None
        assert got.created_at == created
        assert got.response == {"text": "zürich ✈", "p": [0.1, 1e-9]}


def test_orphaned_spill_file_is_taken_over_once(
    unreachable_engine: Engine, log_engine: Engine, tmp_path: Path, wait_until: WaitUntil
) -> None:
    """Two workers start beside a dead one's spill file: one replays it, rows land once."""
    spill_dir = tmp_path / "spill"
    dead = RequestLogWriter(unreachable_engine, spill_dir=spill_dir)
    for i in range(50):
        dead.submit(make_row(i))
    assert dead.stop()
    [orphan] = spill_files(spill_dir)
    with orphan.open("a") as f:
        f.write('{"request_id": "torn-by-a-cra')  # a process killed mid-write

    workers = [RequestLogWriter(log_engine, spill_dir=spill_dir) for _ in range(2)]
    for w in workers:
        w.start()
    assert wait_until(lambda: spill_files(spill_dir) == [])
    assert all(w.stop() for w in workers)
    assert stored_ids(log_engine) == [f"req-{i:05d}" for i in range(50)]
    assert sorted(w.written_rows for w in workers) == [0, 50]
    assert sum(w.dropped_rows for w in workers) == 1  # the torn line, counted


def test_rows_are_kept_until_the_table_exists(
    engine: Engine, tmp_path: Path, wait_until: WaitUntil
) -> None:
    """The service started before migrations ran: rows wait on disk, then reach the table."""
    spill_dir = tmp_path / "spill"
    writer = RequestLogWriter(
        engine, batch_size=4, spill_dir=spill_dir, retry_min_s=0.05, retry_max_s=0.2
    )
    writer.start()
    for i in range(10):
        writer.submit(make_row(i))
    assert wait_until(lambda: writer.spilled_rows == 10)
    assert writer.written_rows == 0

    Base.metadata.create_all(engine)
    for i in range(10, 15):
        writer.submit(make_row(i))
    assert wait_until(lambda: writer.written_rows == 15)
    assert writer.stop()
    assert stored_ids(engine) == [f"req-{i:05d}" for i in range(15)]
    assert spill_files(spill_dir) == []
    assert writer.dropped_rows == 0


def test_rows_are_dropped_and_counted_when_spill_fails(
    unreachable_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.request_log")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    writer = RequestLogWriter(unreachable_engine, spill_dir=not_a_dir / "spill")
    writer.start()
    for i in range(3):
        writer.submit(make_row(i))
    assert writer.stop()
    assert (writer.written_rows, writer.spilled_rows, writer.dropped_rows) == (0, 0, 3)
    assert "cannot create spill file" in caplog.text
    assert "utterance" not in caplog.text, "row contents must not reach the log"


@pytest.mark.postgres
def test_outage_and_recovery_through_a_proxy(
    pg_database: URL, pg_proxy: Any, tmp_path: Path, wait_until: WaitUntil
) -> None:
    """A real outage: the connection to PostgreSQL breaks, then the server is back."""
    direct = make_engine(pg_database)
    via_proxy = make_engine(pg_database.set(host="127.0.0.1", port=pg_proxy.port))
    spill_dir = tmp_path / "spill"
    try:
        Base.metadata.create_all(direct)
        writer = RequestLogWriter(
            via_proxy, batch_size=5, spill_dir=spill_dir, retry_min_s=0.1, retry_max_s=0.4
        )
        writer.start()
        for i in range(10):
            writer.submit(make_row(i))
        assert wait_until(lambda: writer.written_rows == 10)

        pg_proxy.stop()  # outage: open connections reset, new ones refused
        for i in range(10, 30):
            writer.submit(make_row(i))
        assert wait_until(lambda: writer.spilled_rows == 20)
        assert count(direct) == 10
        assert sum(len(p.read_text().splitlines()) for p in spill_files(spill_dir)) == 20
        # Part of the spilled rows reach the DB some other way: replay must skip them.
        with sessions(direct)() as session, session.begin():
            session.add_all([RequestLog(**make_row(i)) for i in range(10, 13)])

        pg_proxy.start()  # the database is back
        assert wait_until(lambda: spill_files(spill_dir) == [])
        for i in range(30, 35):
            writer.submit(make_row(i))
        assert writer.stop(timeout=10)

        assert stored_ids(direct) == [f"req-{i:05d}" for i in range(35)]
        with sessions(direct)() as session:
            distinct = session.scalar(select(func.count(func.distinct(RequestLog.request_id))))
        assert distinct == count(direct) == 35
        assert writer.written_rows == 10 + 17 + 5
        assert writer.dropped_rows == 0
    finally:
        via_proxy.dispose()
        direct.dispose()
