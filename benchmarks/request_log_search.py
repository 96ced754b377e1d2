"""The console's request-log search (``GET /v1/admin/requests``) on a large log in PostgreSQL:
a scratch database migrated to head, ``--rows`` synthetic rows (COPY), then each query shape
timed through :func:`app.operating.console.queries.search` (the route's own query), median of
``--repeat`` runs after one warm-up.

    python -m benchmarks.request_log_search --rows 1000000 --admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import make_url, text

from app.db.engine import make_engine, make_session_factory
from app.operating.console.queries import Filters, search
from benchmarks.common import add_common_args, format_table, write_results
from benchmarks.servers import scratch_database

TARGET_MS = 100.0  # every query shape, median: the console's search must feel instant

INTENTS = ["book_flight", "book_table", "greet", "complaint", "book_hotel", "goodbye"]
RARE_INTENT = "lost_luggage"  # 1 row in 10,000
WORDS = [
    "book",
    "a",
    "table",
    "flight",
    "hotel",
    "for",
    "two",
    "at",
    "seven",
    "tomorrow",
    "please",
    "my",
    "the",
    "to",
    "from",
]
START = datetime(2026, 11, 1, tzinfo=UTC)


def _rows(n: int, seed: int = 0) -> Any:
    rng = random.Random(seed)
    for i in range(n):
        intent = RARE_INTENT if i % 10_000 == 7 else rng.choice(INTENTS)
        words = rng.choices(WORDS, k=rng.randint(3, 10))
        if i % 50_000 == 11:
            words.append("zorblewuggle")  # a rare word: 1 row in 50,000
        confidence = rng.betavariate(8, 1.5)
        response = {
            "intent": {"name": intent, "confidence": round(confidence, 4)},
            "slots": [{"slot": "x", "start": 0, "end": 1, "confidence": round(confidence, 4)}],
        }
        model = f"demo@2026110{1 + i % 3}T000000000000Z"
        yield (
            START + timedelta(seconds=i * 2),
            f"{i:032x}",
            "/v1/parse",
            " ".join(words),
            "full",
            json.dumps(response),
            json.dumps({"tagger": model, "sentiment": None}),
            rng.uniform(2, 20),
            200,
        )


def fill(url: Any, n: int) -> float:
    """COPY ``n`` rows into request_log; seconds taken."""
    from alembic import command
    from alembic.config import Config

    config = Config("alembic.ini")
    config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    engine = make_engine(url.render_as_string(hide_password=False))
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        conn: Any = raw.driver_connection
        columns = "created_at, request_id, route, text, text_mode, response, model_versions, "
        columns += "latency_ms, status_code"
        with conn.cursor() as cur, cur.copy(f"COPY request_log ({columns}) FROM STDIN") as copy:
            for row in _rows(n):
                copy.write_row(row)
        conn.commit()
        with conn.cursor() as cur:
            conn.autocommit = True
            cur.execute("VACUUM ANALYZE request_log")
    finally:
        raw.close()
        engine.dispose()
    return time.perf_counter() - started


def shapes(n: int) -> list[tuple[str, Filters, int | None]]:
    end = START + timedelta(seconds=n * 2)
    return [
        ("newest page", Filters(), None),
        ("page deep in the log (cursor)", Filters(), n // 2),
        ("intent = common", Filters(intent="greet"), None),
        ("intent = rare (1 in 10,000)", Filters(intent=RARE_INTENT), None),
        ("model = name", Filters(model="demo"), None),
        ("model = name@version", Filters(model="demo@20261102T000000000000Z"), None),
        ("text contains common word", Filters(q="flight"), None),
        ("text contains rare word (1 in 50,000)", Filters(q="zorblewuggle"), None),
        ("max_confidence 0.3", Filters(max_confidence=0.3), None),
        ("last hour", Filters(since=end - timedelta(hours=1)), None),
        (
            "a day a week ago",
            Filters(since=end - timedelta(days=8), until=end - timedelta(days=7)),
            None,
        ),
        (
            "intent + model + max_confidence",
            Filters(model="demo", intent="complaint", max_confidence=0.5),
            None,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.request_log_search",
        description="Time the console's request-log search on a large PostgreSQL log.",
    )
    add_common_args(parser)  # --out, --quick (100,000 rows); --data-dir is not read
    parser.add_argument("--rows", type=int, default=None, help="rows (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=int, default=50, help="page size")
    parser.add_argument(
        "--admin-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL URL allowed to CREATE DATABASE (a scratch one is dropped after)",
    )
    args = parser.parse_args(argv)
    args.rows = args.rows or (100_000 if args.quick else 1_000_000)
    started_at = datetime.now(UTC)
    with scratch_database(make_url(args.admin_url), "slotfill_bench") as url:
        seconds = fill(url, args.rows)
        print(f"{args.rows:,} rows in {seconds:.1f}s", file=sys.stderr)
        engine = make_engine(url.render_as_string(hide_password=False))
        sessions = make_session_factory(engine)
        results = []
        try:
            for label, filters, cursor in shapes(args.rows):
                times, found = [], 0
                for i in range(args.repeat + 1):
                    with sessions() as session:
                        started = time.perf_counter()
                        rows, _ = search(session, filters, cursor, args.limit)
                        elapsed = (time.perf_counter() - started) * 1000
                    found = len(rows)
                    if i:
                        times.append(elapsed)
                results.append((label, found, statistics.median(times), max(times)))
            with engine.connect() as conn:
                size = conn.execute(
                    text("SELECT pg_size_pretty(pg_total_relation_size('request_log'))")
                ).scalar()
        finally:
            engine.dispose()
    verdicts = [
        (label, found, median, worst, median <= TARGET_MS)
        for label, found, median, worst in results
    ]
    print(f"{args.rows:,} rows, {size}, page of {args.limit}, median of {args.repeat} runs")
    print(
        format_table(
            ["query", "rows", "median ms", "max ms", "target ms", "verdict"],
            [
                (label, found, median, worst, TARGET_MS, "PASS" if ok else "FAIL")
                for label, found, median, worst, ok in verdicts
            ],
        )
    )
    path = write_results(
        "request_log_search",
        args,
        started_at,
        {
            "rows": args.rows,
            "table_size": size,
            "target_median_ms": TARGET_MS,
            "queries": [
                {"query": label, "rows": found, "median_ms": median, "max_ms": worst, "pass": ok}
                for label, found, median, worst, ok in verdicts
            ],
            "all_pass": all(ok for *_, ok in verdicts),
        },
    )
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
