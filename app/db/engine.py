"""Engine and session factories with the per-backend settings the service relies on."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

# Seconds a PostgreSQL connect may take. Short, so that an unreachable database turns into an
# error quickly and the request-log writer spills to disk instead of stalling.
PG_CONNECT_TIMEOUT_S = 3
# How long SQLite waits on a lock held by another connection (e.g. another uvicorn worker).
SQLITE_BUSY_TIMEOUT_MS = 5000


def json_bytes(value: Any) -> bytes:
    """The request log's JSON (columns, journal and spill lines, size bounds): compact UTF-8 by
    pydantic's Rust encoder, a fifth of ``json.dumps``'s time for a stored parse (every request
    writes one). The same JSON for the values stored (a float may be written differently,
    0.00001 for 1e-05, and reads back the same; NaN stays NaN); an unencodable value raises
    ``ValueError`` (``PydanticSerializationError``)."""
    return to_json(value, inf_nan_mode="constants")


def json_text(value: Any) -> str:
    """:func:`json_bytes` as text: what JSON columns store."""
    return json_bytes(value).decode("utf-8")


def make_engine(url: str | URL, **engine_kwargs: Any) -> Engine:
    """Create an engine for `url`; `engine_kwargs` override the defaults chosen here."""
    engine_kwargs.setdefault("json_serializer", json_text)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _make_sqlite_engine(parsed, engine_kwargs)
    if backend == "postgresql":
        return _make_postgres_engine(parsed, engine_kwargs)
    return create_engine(parsed, **engine_kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`; objects stay readable after commit (no lazy reload)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def _make_sqlite_engine(url: URL, engine_kwargs: dict[str, Any]) -> Engine:
    # The request-log writer thread uses connections created on other threads.
    connect_args: dict[str, Any] = {"check_same_thread": False}
    connect_args.update(engine_kwargs.pop("connect_args", {}))
    kwargs: dict[str, Any] = {"connect_args": connect_args}
    if url.database in (None, "", ":memory:"):
        # Every connection to `:memory:` is a new empty database: share a single one so the
        # writer thread and readers see the same tables.
        kwargs["poolclass"] = StaticPool
    kwargs.update(engine_kwargs)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    # WAL lets readers proceed while the writer commits; busy_timeout makes concurrent writers
    # (several workers on one file) wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _make_postgres_engine(url: URL, engine_kwargs: dict[str, Any]) -> Engine:
    connect_args: dict[str, Any] = {
        "connect_timeout": PG_CONNECT_TIMEOUT_S,
        # TCP keepalives notice a peer that vanished without closing the connection, so a
        # statement on a dead connection errors out instead of hanging forever.
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    connect_args.update(engine_kwargs.pop("connect_args", {}))
    kwargs: dict[str, Any] = {
        # Pooled connections die when the server restarts; test them on checkout.
        "pool_pre_ping": True,
        "connect_args": connect_args,
    }
    kwargs.update(engine_kwargs)
    return create_engine(url, **kwargs)
