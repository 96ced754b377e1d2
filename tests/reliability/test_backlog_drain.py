"""SIGTERM and the listen backlog (issue 17, item 8), deterministically: connections that
completed their handshake and sent a request while the worker was not accepting (busy, or
between its last accept and the close) are in the kernel's backlog when shutdown begins.
Closing the last copy of the listening socket resets them; the server must take and
answer them first. uvicorn's own server is the "before" case.
"""

from __future__ import annotations

import asyncio
import http.client
import socket

import pytest
import uvicorn
from reliability_support import start_in_process

from app.http_server import DrainingServer

WAITING = 5
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def _answer(sock: socket.socket) -> str:
    try:
        response = http.client.HTTPResponse(sock, method="GET")
        response.begin()
        return f"{response.status} {response.read().decode()}"
    except (OSError, http.client.HTTPException) as err:
        return f"reset: {type(err).__name__}"
    finally:
        sock.close()


async def _shutdown_with_backlog(server_class: type[uvicorn.Server]) -> list[str]:
    server, listener = await start_in_process(server_class=server_class, backlog=64)
    # Stop the event loop from accepting, as if it were busy: clients connect (the kernel
    # completes the handshakes) and send their requests into the backlog.
    loop = asyncio.get_running_loop()
    loop.remove_reader(listener.fileno())
    port = listener.getsockname()[1]
    clients = []
    for _ in range(WAITING):
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall(REQUEST)
        clients.append(client)
    await server.shutdown(sockets=[listener])
    return await asyncio.gather(*(asyncio.to_thread(_answer, c) for c in clients))


@pytest.mark.timeout(60)
def test_shutdown_answers_connections_waiting_in_the_backlog() -> None:
    assert asyncio.run(_shutdown_with_backlog(DrainingServer)) == ["200 ok"] * WAITING


@pytest.mark.timeout(60)
def test_uvicorn_alone_resets_them() -> None:
    """The failure the drain fixes: shows this test's setup reproduces it."""
    answers = asyncio.run(_shutdown_with_backlog(uvicorn.Server))
    assert all(a.startswith("reset") for a in answers), answers
