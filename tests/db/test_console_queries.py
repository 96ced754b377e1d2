"""The console's request-log queries on SQLite and PostgreSQL: filters on JSON paths, keyset
pages, the review queue's order, traffic figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.db import insert_request_logs, make_session_factory
from app.operating.console.queries import Filters, review_queue, search, traffic

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _row(n: int, intent: str, confidence: float, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": f"r{n}",
        "route": "/v1/parse",
        "text": f"Text number {n} about {intent}",
        "text_mode": "full",
        "response": {
            "intent": {"name": intent, "confidence": confidence},
            "slots": [{"slot": "num", "start": 5, "end": 11, "confidence": 0.9}],
        },
        "model_versions": {"tagger": "demo@V1" if n % 2 else "other@V7", "sentiment": None},
        "latency_ms": float(n),
        "status_code": 200,
        "created_at": NOW + timedelta(minutes=n),
    } | extra


def test_search_filters_and_keyset_pages(log_engine: Engine) -> None:
    sessions = make_session_factory(log_engine)
    rows = [_row(n, "greet" if n < 6 else "book", 0.1 * n) for n in range(1, 10)]
    rows.append(_row(10, "-", 0.0, status_code=503, response=None, model_versions=None))
    with sessions() as session, session.begin():
        insert_request_logs(session, rows)
    with sessions() as session:
        seen, cursor, pages = [], None, 0
        while True:
            page, cursor = search(session, Filters(), cursor, 3)
            seen += [r.request_id for r in page]
            pages += 1
            if cursor is None:
                break
        assert seen == [f"r{n}" for n in range(10, 0, -1)] and pages == 4

        def ids(**kw: Any) -> list[str]:
            return [r.request_id for r in search(session, Filters(**kw), None, 50)[0]]

        assert ids(intent="book") == ["r9", "r8", "r7", "r6"]
        assert ids(model="demo") == ["r9", "r7", "r5", "r3", "r1"]
        assert ids(model="other@V7", intent="greet") == ["r4", "r2"]
        assert ids(q="NUMBER 3 ABOUT") == ["r3"]
        assert ids(q="100%") == []  # LIKE wildcards are matched literally
        assert ids(max_confidence=0.25) == ["r2", "r1"]
        assert ids(since=NOW + timedelta(minutes=8), until=NOW + timedelta(minutes=10)) == [
            "r9",
            "r8",
        ]

        queue = review_queue(session, Filters(), 4)
        assert [i.row.request_id for i in queue] == ["r1", "r2", "r3", "r4"]  # least sure first
        figures = traffic(session, Filters(), 0.5)
        assert figures["demo@V1"].requests == 5
        assert figures["other@V7"].intents == {"greet": 2, "book": 2}
        assert figures["-"].errors == 1
        assert figures["demo@V1"].low_confidence == 2  # 0.1 and 0.3


def test_past_period_pages_by_id_whether_read_whole_or_walked(
    log_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # created_at out of id order (a replayed spill file): pages still follow the ids.
    minutes = [5, 1, 9, 3, 7, 2, 8, 4, 6, 30]
    rows = [
        _row(n, "greet", 0.9, created_at=NOW + timedelta(minutes=m))
        for n, m in enumerate(minutes, start=1)
    ]
    sessions = make_session_factory(log_engine)
    with sessions() as session, session.begin():
        insert_request_logs(session, rows)
    period = Filters(since=NOW + timedelta(minutes=2), until=NOW + timedelta(minutes=9))

    def pages() -> list[list[str]]:
        found, cursor = [], None
        with sessions() as session:
            while True:
                page, cursor = search(session, period, cursor, 2)
                found.append([r.request_id for r in page])
                if cursor is None:
                    return found

    whole = pages()  # 7 rows, under PERIOD_SORT_ROWS: read whole and sorted by id
    monkeypatch.setattr("app.operating.console.queries.PERIOD_SORT_ROWS", 0)
    assert whole == pages() == [["r9", "r8"], ["r7", "r6"], ["r5", "r4"], ["r1"]]
