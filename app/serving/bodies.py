"""Request bodies for the guard middleware: read whole before a request takes a concurrency
slot, checked as strict JSON, and refused without resetting a client that is still sending.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
from starlette.types import Message, Receive, Send

from app.errors import error_body

DRAIN_BYTES = 8 << 20  # a refused body is read and dropped up to this much ...
DRAIN_S = 10.0  # ... for at most this long, before the connection closes
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


class BodyError(Exception):
    """The body cannot be taken: ``status`` and ``code`` of the answer; ``ended`` says
    whether the client finished sending it (if not, it is drained before the close)."""

    def __init__(self, status: int, code: str, message: str, *, ended: bool) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.ended = status, code, message, ended


class ClientGone(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


async def read_body(receive: Receive, limit: int, timeout_s: float) -> bytes:
    """The whole body, each part awaited at most ``timeout_s`` (408), ``limit`` bytes at most
    (413)."""
    parts: list[bytes] = []
    size = 0
    while True:
        try:
            # asyncio's own timeout: a timer handle, where anyio's cancel scope costs about
            # 40 us per request (the servers run on asyncio: uvicorn, the test client).
            async with asyncio.timeout(timeout_s):
                message = await receive()
        except TimeoutError:
            message_ = f"request body not received within {timeout_s:g}s"
            raise BodyError(408, "request_timeout", message_, ended=False) from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        part: bytes = message.get("body", b"")
        size += len(part)
        more = bool(message.get("more_body", False))
        if size > limit:
            message_ = f"request body over {limit} bytes"
            raise BodyError(413, "payload_too_large", message_, ended=not more)
        parts.append(part)
        if not more:
            return b"".join(parts)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def json_problem(body: bytes) -> str | None:
    """Why ``body`` is not strict JSON, or None. Python's parser (and so FastAPI's) takes a
    byte-order mark, UTF-16 and UTF-32, and keeps the last of duplicate keys; a client that
    sends those is told, rather than guessed at."""
    if body.startswith(BOMS):
        return "request body starts with a byte-order mark; send UTF-8 without one"
    try:
        # Encoded lone surrogates pass, as in FastAPI's own parse: the parse routes answer
        # them with 422 invalid_text.
        text = body.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return "request body is not valid UTF-8 JSON"
    try:
        json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as dup:
        return f"duplicate key '{str(dup)[:100]}' in the JSON body"
    except (ValueError, RecursionError):
        return "request body is not valid JSON"
    return None


async def answer_and_drain(
    send: Send,
    receive: Receive,
    status: int,
    code: str,
    message: str,
    *,
    drain: bool,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer in the error shape with ``Connection: close``. With ``drain``, the answer goes
    out first, then what is left of the body is read and dropped (``DRAIN_BYTES`` and
    ``DRAIN_S`` at most) before the response ends and the server closes: closing a socket with
    unread data resets it, and the client would lose the answer mid-upload."""
    body = json.dumps(error_body(code, message)).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *(headers or []),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": drain})
    if not drain:
        return
    drained = 0
    with anyio.move_on_after(DRAIN_S):
        while drained <= DRAIN_BYTES:
            received = await receive()
            if received["type"] != "http.request":
                break
            drained += len(received.get("body", b""))
            if not received.get("more_body", False):
                break
    await send({"type": "http.response.body", "body": b"", "more_body": False})
