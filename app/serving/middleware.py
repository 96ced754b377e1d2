"""ASGI guard in front of the app: body-size limit, concurrency limit, timing, metrics.

Written as plain ASGI (not BaseHTTPMiddleware) so it can count streamed (chunked) body
bytes and answer 413 without buffering, and so it adds almost nothing per request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import paths
from app.errors import error_body
from app.logs import REQUEST_ID
from app.serving.request_log.rows import new_request_id

EXEMPT = paths.HEALTH_ROUTES
LOGGED_ROUTES = paths.LOGGED_ROUTES
KNOWN_PATHS = EXEMPT | LOGGED_ROUTES | {paths.MODELS}


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _route_label(scope: Scope) -> str:
    """Metrics label of a request: its path for the fixed routes, else the template of the
    route the router matched (``other`` if none). Never the raw path: clients choose paths,
    and every distinct label value is a new time series kept for the life of the process."""
    path: str = scope["path"]
    if path in KNOWN_PATHS:
        return path
    template = getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) else "other"


class BodyTooLarge(HTTPException):
    """The request body passed the configured limit.

    An ``HTTPException`` because FastAPI reads the body inside the route and turns any other
    exception raised while reading into a 400 ("error parsing the body"); this one it lets
    through to the error handlers, which answer 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class BodyTimeout(HTTPException):
    """The rest of the request body did not arrive in time (e.g. a Content-Length larger than
    what was sent). Without this a client could hold a concurrency slot for ever. The
    connection is closed after the 408: where the body ends is unknown."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"request body not received within {seconds:g}s", {"connection": "close"}
        )


async def _send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Rejects oversized (413) or stalled (408) bodies and excess concurrency (503 +
    Retry-After). Health and metrics routes are neither limited nor counted."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_concurrency: int,
        observe: Callable[[str, str, int, float], None],
        log_failure: Callable[[Scope, int, float], None],
        body_timeout_s: float = 30.0,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_concurrency = max_concurrency
        self.body_timeout_s = body_timeout_s
        self.observe = observe
        self.log_failure = log_failure
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        started = time.perf_counter()
        scope.setdefault("state", {})["started"] = started
        # One id per request: the response, the log row and the log lines all carry it.
        scope["state"]["request_id"] = request_id = new_request_id()
        REQUEST_ID.set(request_id)  # this request's task only: no reset needed
        status_holder = {"status": 500, "sent": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["sent"] = True
            await send(message)

        counted = path not in EXEMPT
        if counted and self.in_flight >= self.max_concurrency:
            await _send_error(
                send,
                503,
                "overloaded",
                "server is at its concurrency limit; retry shortly",
                [(b"retry-after", b"1")],
            )
            self._finish(scope, 503, started)
            return
        headers = dict(scope.get("headers") or [])
        has_body = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
        if (
            scope.get("method") == "POST"
            and has_body  # bodiless POSTs (cancel, rollback) need no content type
            and not _is_json(headers.get(b"content-type", b""))
        ):
            await _send_error(
                send, 415, "unsupported_media_type", "expected Content-Type: application/json"
            )
            self._finish(scope, 415, started)
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _send_error(send, 400, "bad_request", "invalid Content-Length header")
                self._finish(scope, 400, started)
                return
            if declared > self.max_body:
                await _send_error(
                    send, 413, "payload_too_large", f"request body over {self.max_body} bytes"
                )
                self._finish(scope, 413, started)
                return
        received = 0
        body_done = False

        async def receive_wrapper() -> Message:
            nonlocal received, body_done
            if body_done:  # e.g. waiting for a disconnect: no time limit
                return await receive()
            try:
                with anyio.fail_after(self.body_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.body_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        self.in_flight += counted
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except (BodyTooLarge, BodyTimeout) as exc:
            if not status_holder["sent"]:
                code = "payload_too_large" if exc.status_code == 413 else "request_timeout"
                extra = [(k.encode(), v.encode()) for k, v in (exc.headers or {}).items()]
                await _send_error(send, exc.status_code, code, str(exc.detail), extra)
                status_holder["status"] = exc.status_code
        finally:
            self.in_flight -= counted
        self._finish(scope, int(status_holder["status"]), started)

    def _finish(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        self.observe(_route_label(scope), scope.get("method", ""), status, elapsed)
        state: dict[str, Any] = scope.get("state", {})
        if scope["path"] in LOGGED_ROUTES and not state.get("logged"):
            self.log_failure(scope, status, elapsed * 1000)
