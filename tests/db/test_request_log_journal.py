"""The request-log journal: rows a process held in memory when it was killed are replayed by
the next writer; a clean stop leaves no journal behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from app.db import RequestLog
from app.db import make_session_factory as sessions
from app.serving.request_log.writer import RequestLogWriter

pytestmark = pytest.mark.timeout(60)
WaitUntil = Callable[..., bool]
REPO_ROOT = Path(__file__).resolve().parents[2]

# A process that queues rows it never writes (its writer thread is not started, as if the
# rows were still waiting in memory), then is killed with SIGKILL.
_KILLED_PROCESS = """
import os, signal, sys
from app.db import make_engine
from app.serving.request_log.writer import RequestLogWriter

writer = RequestLogWriter(
    make_engine("postgresql+psycopg://postgres@127.0.0.1:1/x"),
    spill_dir=sys.argv[1],
    journal_dir=sys.argv[2],
)
for i in range(int(sys.argv[3])):
    writer.submit({
        "request_id": f"req-{i:05d}", "route": "/v1/parse", "client": "127.0.0.1",
        "text": f"utterance {i}", "text_mode": "full", "response": {"n": i},
        "model_versions": None, "latency_ms": 1.0, "status_code": 200,
    })
os.kill(os.getpid(), signal.SIGKILL)
"""


def _stored(engine: Engine) -> list[str]:
    with sessions(engine)() as session:
        return list(session.scalars(select(RequestLog.request_id).order_by(RequestLog.request_id)))


def _row(i: int) -> dict[str, object]:
    return {
        "request_id": f"req-{i:05d}",
        "route": "/v1/parse",
        "client": "127.0.0.1",
        "text": f"utterance {i}",
        "text_mode": "full",
        "response": {"n": i},
        "model_versions": None,
        "latency_ms": 1.0,
        "status_code": 200,
    }


def test_rows_in_memory_of_a_killed_process_are_replayed(
    log_engine: Engine, tmp_path: Path, wait_until: WaitUntil
) -> None:
    spill_dir, journal_dir = tmp_path / "spill", tmp_path / "journal"
    script = textwrap.dedent(_KILLED_PROCESS)
    killed = subprocess.run(
        [sys.executable, "-c", script, str(spill_dir), str(journal_dir), "40"],
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert killed.returncode == -9
    assert len(list(journal_dir.glob("journal-*.jsonl"))) == 1

    # Two rows reached the database before the kill: the replay skips them.
    with sessions(log_engine)() as session, session.begin():
        session.add_all([RequestLog(**_row(i)) for i in (0, 1)])

    nxt = RequestLogWriter(log_engine, spill_dir=spill_dir, journal_dir=journal_dir)
    nxt.start()
    assert wait_until(lambda: len(_stored(log_engine)) == 40)
    assert nxt.stop()
    assert _stored(log_engine) == [f"req-{i:05d}" for i in range(40)]
    assert (nxt.written_rows, nxt.dropped_rows) == (38, 0)
    assert list(journal_dir.iterdir()) == []


def test_journal_files_go_once_their_rows_are_stored(log_engine: Engine, tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    writer = RequestLogWriter(
        log_engine, batch_size=7, spill_dir=tmp_path / "spill", journal_dir=journal_dir
    )
    writer._journal._rotate_bytes = 1000  # type: ignore[union-attr]  # several files
    for i in range(30):
        writer.submit(_row(i))
    assert len(list(journal_dir.glob("journal-*.jsonl"))) > 2
    writer.start()
    assert writer.stop()
    assert len(_stored(log_engine)) == 30
    assert list(journal_dir.iterdir()) == []
    assert writer.journal_failures == 0
