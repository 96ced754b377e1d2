"""SIGTERM and new connections (issue 17, item 8): ``slotfill serve --workers 2`` gets SIGTERM
while clients keep opening new connections (one request each) and a batch load keeps the
workers busy. Every request is either answered (200) or refused at connect (the listening
socket is closed first); none is accepted and then reset mid-request, as happens when the
supervisor keeps its copy of the listening socket open until it exits.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from app_support import migrate
from reliability_support import HOST, TEXTS, Server, serve, server_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CLIENTS = 4
BEFORE = 15  # requests per client before the signal
REFUSALS = 5  # a client stops after this many refused connects in a row
CAP = 1000  # and after this many attempts in all
BATCH = json.dumps({"texts": [" ".join(TEXTS)] * 32}).encode()


def _one(port: int, body: bytes, path: str) -> str:
    """``200`` (or another status), ``refused`` at connect, or ``reset: ...`` when the
    connection was taken and then dropped without an answer."""
    try:
        sock = socket.create_connection((HOST, port), timeout=60)
    except ConnectionRefusedError:
        return "refused"
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        response.read()
        return str(response.status)
    except (OSError, http.client.HTTPException) as err:
        return f"reset: {type(err).__name__}"
    finally:
        sock.close()


class Client(threading.Thread):
    """New connection per request until ``REFUSALS`` refusals in a row."""

    def __init__(self, port: int, index: int, signalled: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.index, self.signalled = port, index, signalled
        self.before: list[str] = []
        self.after: list[str] = []

    def run(self) -> None:
        refused = 0
        for i in range(CAP):
            batch = (i + self.index) % 3 == 0
            body = BATCH if batch else json.dumps({"text": TEXTS[i % len(TEXTS)]}).encode()
            after = self.signalled.is_set()  # read before connecting
            outcome = _one(self.port, body, "/v1/parse/batch" if batch else "/v1/parse")
            (self.after if after else self.before).append(outcome)
            refused = refused + 1 if outcome == "refused" else 0
            if refused >= REFUSALS:
                return
            if outcome == "refused":
                time.sleep(0.05)


def test_sigterm_refuses_or_serves_new_connections(
    reliability_store: Path, tmp_path: Path, figures: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    migrate(url)
    env = server_env(reliability_store, url, tmp_path / "spill")
    signalled = threading.Event()
    with serve(env, tmp_path / "server.log", workers=2) as server:
        clients = [Client(server.port, i, signalled) for i in range(CLIENTS)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 120
        while any(len(c.before) < BEFORE for c in clients) and time.monotonic() < deadline:
            time.sleep(0.05)
        signalled.set()
        server.sigterm()
        for client in clients:
            client.join(180)
        exit_code = _wait(server)
        log = server.log()

    before = Counter(o for c in clients for o in c.before)
    after = Counter(o for c in clients for o in c.after)
    figures.record(
        f"SIGTERM with new connections: {CLIENTS} clients, one request per connection",
        before_signal=dict(before),
        after_signal=dict(after),
        reset_mid_request=sum(n for k, n in (before + after).items() if k.startswith("reset")),
        exit_code=exit_code,
    )
    assert not any(c.is_alive() for c in clients), "a client is still waiting"
    assert set(before) == {"200"}, before
    assert set(after) <= {"200", "refused"}, after
    assert after["refused"] >= CLIENTS * REFUSALS  # every client ended on refusals
    assert exit_code == 0, log[-3000:]


def _wait(server: Server) -> int | None:
    code = server.wait(90)
    with contextlib.suppress(Exception):
        if code is None:
            server.proc.kill()
    return code
