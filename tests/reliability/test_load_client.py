"""The load client's own bookkeeping: a socket the HTTP library drops without closing is
counted in the figures instead of failing whichever later test the garbage collector lands in.
"""

from __future__ import annotations

import asyncio
import socket
import warnings

import pytest
from reliability_support import HOST, Load, run_load


async def _drop_a_connection(port: int) -> None:
    """Open a client transport to ``port`` and lose it without closing it, as httpcore
    now and then does when the server resets a request."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, HOST, port)
    del transport


def _listener() -> socket.socket:
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(4)
    return listener


def test_a_dropped_client_socket_is_counted_not_raised() -> None:
    load = Load("http://unused", total=0, concurrency=1)
    with _listener() as listener:
        run_load(load, _drop_a_connection(listener.getsockname()[1]))
    assert load.leaked_client_transports == 1


def test_a_clean_run_counts_nothing() -> None:
    async def nothing() -> str:
        return "done"

    load = Load("http://unused", total=0, concurrency=1)
    assert run_load(load, nothing()) == "done"
    assert load.leaked_client_transports == 0


def test_other_warnings_still_reach_pytest() -> None:
    async def warn() -> None:
        warnings.warn("something else", UserWarning, stacklevel=1)

    load = Load("http://unused", total=0, concurrency=1)
    with pytest.warns(UserWarning, match="something else"):
        run_load(load, warn())
    assert load.leaked_client_transports == 0
