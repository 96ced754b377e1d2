"""SIGTERM and keep-alive connections between requests: a stopping worker must not close one
under a client that is reusing it, for the request on its way would be reset. Its next
request is served with ``Connection: close`` instead, however late it comes within the
stop's keep-alive timeout (``STOP_IDLE_S``), and so is the next request after a response
whose head had already promised keep-alive when the stop began; a connection no request
comes on is closed at that timeout, however long the server's keep-alive setting, so the
stop ends. uvicorn's own protocol is the "before" case.

Checked in-process on one listening socket, as ``test_backlog_drain.py`` does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from reliability_support import start_in_process
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app import http_server
from app.http_server import PROTOCOL, STOP_GRACE_S

pytestmark = pytest.mark.timeout(60)
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
LATE_S = STOP_GRACE_S + 0.5  # past the grace of a connection that has sent nothing yet


class _App:
    """Answers ``ok``; with ``hold`` set, sends the head and waits for ``release`` before
    the body, so that a stop can begin between the two."""

    def __init__(self) -> None:
        self.hold = False
        self.head_sent = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if self.hold:
            self.head_sent.set()
            await self.release.wait()
        await send({"type": "http.response.body", "body": b"ok"})


async def _response(reader: asyncio.StreamReader) -> str:
    """``"200 keep-alive"``, ``"200 close"``, or how the connection ended instead."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except asyncio.IncompleteReadError as err:
        return "closed" if not err.partial else "cut"
    except ConnectionResetError:
        return "reset"
    status = head.split(b" ", 2)[1].decode()
    body_follows = b"transfer-encoding: chunked" in head.lower()
    if body_follows:
        await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 10)
    closes = b"connection: close" in head.lower()
    return f"{status} {'close' if closes else 'keep-alive'}"


async def _served(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    assert await _response(reader) == "200 keep-alive"
    return reader, writer


async def _late_request(protocol: str | type[HttpToolsProtocol], hold_head: bool) -> str:
    """Start a stop with one keep-alive connection between requests (or, ``hold_head``, in
    the middle of a response whose head is out); send its next request ``LATE_S`` later."""
    app = _App()
    server, listener = await start_in_process(app, http=protocol)
    port = listener.getsockname()[1]
    try:
        if hold_head:
            app.hold = True
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(REQUEST)
            await asyncio.wait_for(app.head_sent.wait(), 10)
            stop = asyncio.create_task(server.shutdown(sockets=[listener]))
            await asyncio.sleep(0.4)  # the stop reaches the connection (after 0.25 s)
            app.hold = False
            app.release.set()
            assert await _response_body_only(reader)
        else:
            reader, writer = await _served(port)
            stop = asyncio.create_task(server.shutdown(sockets=[listener]))
        await asyncio.sleep(LATE_S)
        writer.write(REQUEST)
        answer = await _response(reader)
        writer.close()
        await asyncio.wait_for(stop, 30)  # the worker's stop ends once the connection has
        return answer
    finally:
        listener.close()


async def _response_body_only(reader: asyncio.StreamReader) -> bool:
    """The rest of a response whose head was read before: its chunked body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 10)
    return b"connection: close" not in head.lower()  # the head promised keep-alive


@pytest.mark.parametrize("hold_head", [False, True], ids=["idle", "head-sent"])
def test_a_late_request_on_a_kept_alive_connection_is_served(hold_head: bool) -> None:
    assert asyncio.run(_late_request(PROTOCOL, hold_head)) == "200 close"


def test_uvicorn_alone_closes_the_connection_under_it() -> None:
    """The "before" case: uvicorn closes an idle connection as the stop begins."""
    answer = asyncio.run(_late_request(HttpToolsProtocol, hold_head=False))
    assert answer in {"closed", "reset"}


async def _idle_through_the_stop() -> str:
    """A keep-alive connection on a server whose keep-alive timeout is long, left idle
    through a stop: how it ends, once the stop has ended."""
    server, listener = await start_in_process(_App(), timeout_keep_alive=3600)
    try:
        reader, writer = await _served(listener.getsockname()[1])
        await asyncio.wait_for(server.shutdown(sockets=[listener]), 30)
        answer = await _response(reader)
        writer.close()
        return answer
    finally:
        listener.close()


def test_an_idle_connection_ends_with_the_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "STOP_IDLE_S", 2)
    assert asyncio.run(_idle_through_the_stop()) == "closed"  # a FIN, not a reset
