"""Database fixtures: `db_url` runs a test on SQLite and on PostgreSQL.

PostgreSQL tests use the session database of `pg_database` (tests/conftest.py) and a fresh
schema in it per test (`pg_schema_url`).
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from app.db import Base, make_engine

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Engine on the empty test database."""
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def log_engine(engine: Engine) -> Engine:
    """Engine on a test database that has the service's tables."""
    Base.metadata.create_all(engine)
    return engine


@pytest.fixture
def alembic_config(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Alembic config of the repository, pointed at the test DB like the CLI would be."""
    monkeypatch.setenv("SLOTFILL_DATABASE_URL", db_url)
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False  # keep pytest's log capture in place
    return config


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `stop()` is a database outage, `start()` the end.

    The port stays the same across restarts, so an engine pointed at the proxy sees the
    server vanish (connections reset, new ones refused) and come back.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _serve(self, listener: socket.socket) -> None:
        # One thread and a selector: stopping closes every socket deterministically.
        peers: dict[socket.socket, socket.socket] = {}
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)

        def close_pair(sock: socket.socket) -> None:
            for s in (sock, peers.pop(sock, None)):
                if s is not None:
                    peers.pop(s, None)
                    sel.unregister(s)
                    s.close()

        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.02):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is listener:
                        client, _ = listener.accept()
                        try:
                            upstream = socket.create_connection(self.target, timeout=3)
                        except OSError:
                            client.close()
                            continue
                        upstream.settimeout(None)
                        peers[client], peers[upstream] = upstream, client
                        sel.register(client, selectors.EVENT_READ)
                        sel.register(upstream, selectors.EVENT_READ)
                    elif sock in peers:
                        try:
                            data = sock.recv(65536)
                            if data:
                                peers[sock].sendall(data)
                                continue
                        except OSError:
                            pass
                        close_pair(sock)
        finally:
            for sock in list(peers):
                if sock in peers:
                    close_pair(sock)
            sel.unregister(listener)
            listener.close()
            sel.close()


@pytest.fixture
def pg_proxy(pg_database: URL) -> Iterator[TcpProxy]:
    """A running TcpProxy in front of the PostgreSQL server."""
    proxy = TcpProxy(pg_database.host or "127.0.0.1", pg_database.port or 5432)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.02)
    return True


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """`wait_until(predicate, timeout=5.0)`: poll until true or timeout; the last result."""
    return _wait_until
