"""Slow and oversized clients against a real ``slotfill serve`` (issue 17, items 1 and 7).

* Stalled uploads do not count against ``SLOTFILL_MAX_CONCURRENCY``: a request takes a slot
  only once its whole body has arrived, so normal requests keep getting 200s while many
  uploads hang half-way.
* Request heads have a size limit (431) and a time limit (408, then the connection closes),
  both answered in the one error shape.
* A body over the limit gets its 413 in the error shape, read by a client that is still
  sending it: the server drains a bounded amount before it closes, so the client is not
  reset half-way through its upload (also when it asked for ``Connection: close``).

Raw sockets on 127.0.0.1, bounded in count; every wait has a generous cap and no assertion
is about how long something took.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_support import migrate
from reliability_support import HOST, TEXTS, Server, serve, server_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LIMIT = 4  # SLOTFILL_MAX_CONCURRENCY of the small run
HEAD_TIMEOUT_S = 1
MAX_HEADER_BYTES = 8192
CAP_S = 30.0  # the most any single socket read waits here


@pytest.fixture(scope="module")
def slow_server(
    reliability_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One worker, a small concurrency limit, a body timeout longer than the test and a
    short request-head timeout."""
    tmp = tmp_path_factory.mktemp("slow")
    url = f"sqlite:///{tmp / 'log.db'}"
    migrate(url)
    env = server_env(
        reliability_store,
        url,
        tmp / "spill",
        max_concurrency=LIMIT,
        body_timeout_seconds=120,
        header_timeout_seconds=HEAD_TIMEOUT_S,
        max_header_bytes=MAX_HEADER_BYTES,
    )
    with serve(env, tmp / "server.log", workers=1) as server:
        yield server


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection((HOST, server.port), timeout=CAP_S)
    sock.settimeout(CAP_S)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes, bool]:
    """Status, headers and body of one response (Content-Length framed), and whether the
    server then closed the connection (read to EOF only after a ``connection: close``)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full response head: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    closed = False
    if headers.get("connection", "").lower() == "close":
        while chunk := sock.recv(65536):
            pass
        closed = True
    return status, headers, rest[:length], closed


def _assert_error_shape(headers: dict[str, str], body: bytes, code: str) -> None:
    assert headers["content-type"] == "application/json", headers
    parsed = json.loads(body)
    assert set(parsed) == {"error"} and set(parsed["error"]) == {"code", "message"}, parsed
    assert parsed["error"]["code"] == code, parsed


def _stall(server: Server, declared: int = 200) -> socket.socket:
    """A ``POST /v1/parse`` whose body stops after a few bytes of the ``declared`` ones."""
    sock = _connect(server)
    head = (
        f"POST /v1/parse HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"text": "')
    return sock


def _normal_requests(server: Server, count: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=server.base_url, timeout=CAP_S) as client:
        for i in range(count):
            response = client.post("/v1/parse", json={"text": TEXTS[i % len(TEXTS)]})
            statuses[response.status_code] += 1
    return statuses


@pytest.mark.parametrize(
    "stalled", [pytest.param(4 * LIMIT, id="16-stalled"), pytest.param(64, id="64-stalled")]
)
def test_stalled_uploads_leave_normal_requests_answered(
    slow_server: Server, stalled: int, figures: Any
) -> None:
    stalls = [_stall(slow_server) for _ in range(stalled)]
    try:
        # The stalled heads reached the worker before this request's connection did.
        statuses = _normal_requests(slow_server, count=40)
        metrics = httpx.get(f"{slow_server.base_url}/metrics", timeout=CAP_S)
        # A stalled upload that finishes is served like any other.
        rest = json.dumps({"text": "book a table"}).encode()[len('{"text": "') :]
        finisher = stalls.pop()
        finisher.sendall(rest + b" " * (200 - len('{"text": "') - len(rest)))
        status, _, body, _ = _read_response(finisher)
        finisher.close()
    finally:
        for sock in stalls:
            sock.close()
    figures.record(
        f"stalled bodies {stalled} (limit {LIMIT}) + 40 normal requests",
        normal_requests=sum(statuses.values()),
        answered_200=statuses[200],
        other=dict(sorted((k, v) for k, v in statuses.items() if k != 200)),
        stalled_one_finished=status,
    )
    assert statuses == Counter({200: 40}), statuses
    assert metrics.status_code == 200
    assert status == 200, body[:300]
    assert json.loads(body)["text"] == "book a table"


def test_an_oversized_request_head_gets_431(slow_server: Server) -> None:
    sock = _connect(slow_server)
    try:
        big = "a" * (MAX_HEADER_BYTES * 8)
        sock.sendall(f"GET /livez HTTP/1.1\r\nHost: {HOST}\r\nX-Big: {big}\r\n\r\n".encode())
        status, headers, body, closed = _read_response(sock)
    finally:
        sock.close()
    assert status == 431, body[:300]
    _assert_error_shape(headers, body, "request_header_fields_too_large")
    assert closed
    # One just under the limit is fine.
    fits = "b" * (MAX_HEADER_BYTES // 2)
    response = httpx.get(f"{slow_server.base_url}/livez", headers={"X-Fits": fits}, timeout=CAP_S)
    assert response.status_code == 200


@pytest.mark.parametrize("sent", [b"", b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Half: "])
def test_a_request_head_that_stops_is_timed_out(slow_server: Server, sent: bytes) -> None:
    """Nothing, or half a head: the server answers 408 (or, with nothing sent, just closes)
    instead of keeping the connection for ever."""
    sock = _connect(slow_server)
    try:
        sock.sendall(sent)
        received = b""
        while chunk := sock.recv(65536):  # until the server closes (CAP_S at most)
            received += chunk
    finally:
        sock.close()
    if sent:
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), received[:300]
        assert b"connection: close" in head.lower()
        assert json.loads(body)["error"]["code"] == "request_timeout"
    else:
        assert received == b""


def _upload(server: Server, body: bytes, headers: list[str], chunked: bool) -> bytes:
    """Send ``body`` in small paced pieces, as over a real network, then read what came
    back. A reset while sending (the server closed with unread data) fails the test."""
    sock = _connect(server)
    head = ["POST /v1/parse HTTP/1.1", f"Host: {HOST}", "Content-Type: application/json"]
    head += headers
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    piece = 16384
    try:
        for i in range(0, len(body), piece):
            part = body[i : i + piece]
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            time.sleep(0.001)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    except OSError as err:
        pytest.fail(f"the upload was cut off: {err!r}")
    finally:
        sock.close()
    return received


@pytest.mark.parametrize(
    ("headers", "chunked"),
    [
        pytest.param(["Connection: close"], False, id="content-length-connection-close"),
        pytest.param([], False, id="content-length-keep-alive"),
        pytest.param(["Connection: close"], True, id="chunked-connection-close"),
    ],
)
def test_a_2mb_body_reads_its_413(slow_server: Server, headers: list[str], chunked: bool) -> None:
    body = json.dumps({"text": "a" * 2_000_000}).encode()
    received = _upload(slow_server, body, headers, chunked)
    head, _, payload = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), received[:300]
    assert b"connection: close" in head.lower()
    assert b"content-type: application/json" in head.lower()
    assert json.loads(payload)["error"]["code"] == "payload_too_large"
    # The worker is fine afterwards.
    response = httpx.post(f"{slow_server.base_url}/v1/parse", json={"text": "hi"}, timeout=CAP_S)
    assert response.status_code == 200
