"""SIGTERM and handshakes in flight (issue 17, item 8): before a worker closes its listening
socket it drops new SYNs on it for a moment, so that handshakes already under way complete
(and are drained and answered) instead of being reset when the client's ACK meets a closed
socket. Checked here on plain sockets: a new connection does not complete while the filter
is on, a handshake that was in flight still does, and open connections keep their data.
"""

from __future__ import annotations

import asyncio
import ctypes
import select
import socket
import struct
import sys

import pytest
from reliability_support import start_in_process

from app.http_server import SO_ATTACH_FILTER, drop_new_syns

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.platform != "linux", reason="socket filters are Linux's"),
]
SO_DETACH_FILTER = 27
_DROP_ALL = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))  # ret #0


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


def test_new_connections_wait_while_open_ones_pass() -> None:
    with _listener() as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as before:
            assert drop_new_syns(listener)
            with pytest.raises(TimeoutError):  # the SYN is dropped: no answer at all
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            conn, _ = listener.accept()
            with conn:
                before.sendall(b"still here")
                assert conn.recv(64) == b"still here"


def test_a_handshake_in_flight_completes_under_the_filter() -> None:
    """The client's SYN reaches the listener before the filter; its ACK comes after."""
    with _listener() as listener, socket.socket() as client:
        port = listener.getsockname()[1]
        # The client drops the SYN-ACK for now: the listener holds a half-open connection.
        client.setsockopt(
            socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", 1, ctypes.addressof(_DROP_ALL))
        )
        client.setblocking(False)
        assert client.connect_ex(("127.0.0.1", port)) in (115, 36)  # EINPROGRESS
        assert drop_new_syns(listener)
        client.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
        # The listener sends its SYN-ACK again (after a second, then two); the client's ACK
        # must pass the listener's filter for the connection to be established.
        _, writable, _ = select.select([], [client], [], 20)
        assert writable and client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        listener.settimeout(20)
        conn, _ = listener.accept()
        with conn:
            client.sendall(b"request")
            assert conn.recv(64) == b"request"


def _get(address: tuple[str, int]) -> bytes | None:
    """One request on a new connection, read to the server's close; None when the
    handshake does not complete. Served, not just connected: a connection the server never
    got to handle would be left open (the ResourceWarning of CI at b0086fa)."""
    try:
        client = socket.create_connection(address, 0.5)
    except TimeoutError:  # the SYN was dropped
        return None
    with client:
        client.settimeout(10)
        client.sendall(b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
        return answer


async def _connects_after_refusing(workers: int, reuse_port: bool) -> bool:
    """Whether a new connection still completes once a worker's server has begun to refuse
    new handshakes (the first step of its shutdown)."""
    server, listener = await start_in_process(reuse_port=reuse_port, workers=workers)
    try:
        server._refuse_new_handshakes()
        address = listener.getsockname()
        answer = await asyncio.to_thread(_get, address)
        return answer is not None and answer.startswith(b"HTTP/1.1 200")
    finally:
        await server.shutdown(sockets=[listener])
        listener.close()


@pytest.mark.parametrize(
    ("workers", "reuse_port", "connects"),
    [
        (1, False, False),  # a single-process server: its socket is its own
        (2, True, False),  # a worker's own SO_REUSEPORT socket
        (2, False, True),  # shared with the other workers, who keep serving on it
    ],
)
def test_only_a_worker_s_own_socket_refuses(workers: int, reuse_port: bool, connects: bool) -> None:
    assert asyncio.run(_connects_after_refusing(workers, reuse_port)) is connects
