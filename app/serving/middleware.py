"""ASGI guard in front of the app: body-size limit, concurrency limit, timing, metrics.

Written as plain ASGI (not BaseHTTPMiddleware) so it can count streamed (chunked) body
bytes and answer 413 as they arrive, and so it adds almost nothing per request. The body
(``max_body_bytes`` at most) is read whole and checked as strict JSON before the request
counts against the concurrency limit, then handed to the app.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import paths
from app.errors import error_body
from app.logs import REQUEST_ID
from app.serving.bodies import BodyError, ClientGone, answer_and_drain, json_problem, read_body
from app.serving.request_log.rows import new_request_id

# A route the guard serves itself once the body is read (``POST`` with a JSON body whose media
# type is exactly application/json): (scope, body, send).
DirectRoute = Callable[[Scope, bytes, Send], Awaitable[None]]
EXEMPT = paths.HEALTH_ROUTES
LOGGED_ROUTES = paths.LOGGED_ROUTES
KNOWN_PATHS = EXEMPT | LOGGED_ROUTES | {paths.MODELS}


def _media(content_type: bytes) -> bytes:
    return content_type.split(b";", 1)[0].strip().lower()


def _is_json(content_type: bytes) -> bool:
    media = _media(content_type)
    return media == b"application/json" or media.endswith(b"+json")


def _is_console_form(path: str, content_type: bytes) -> bool:
    """An HTML form of the operator console (the only non-JSON bodies accepted)."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return path.startswith(paths.CONSOLE + "/") and media == b"application/x-www-form-urlencoded"


def _route_label(scope: Scope) -> str:
    """Metrics label of a request: its path for the fixed routes, else the template of the
    route the router matched (``other`` if none). Never the raw path: clients choose paths,
    and every distinct label value is a new time series kept for the life of the process."""
    path: str = scope["path"]
    if path in KNOWN_PATHS:
        return path
    template = getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) else "other"


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
        direct: Mapping[str, DirectRoute] | None = None,
    ) -> None:
        self.app = app
        self.direct = dict(direct or {})
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
        headers = dict(scope.get("headers") or [])
        has_body = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
        json_body = _is_json(headers.get(b"content-type", b""))
        if (
            scope.get("method") == "POST"
            and has_body  # bodiless POSTs (cancel, rollback) need no content type
            and not json_body
            and not _is_console_form(path, headers.get(b"content-type", b""))
        ):
            await answer_and_drain(
                send,
                receive,
                415,
                "unsupported_media_type",
                "expected Content-Type: application/json",
                drain=True,
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
                message = f"request body over {self.max_body} bytes"
                await answer_and_drain(send, receive, 413, "payload_too_large", message, drain=True)
                self._finish(scope, 413, started)
                return
        # The whole body before a concurrency slot: a client that stalls its upload holds
        # no slot, only its connection (and at most max_body bytes), until the body timeout.
        body = b""
        if has_body:
            try:
                body = await read_body(receive, self.max_body, self.body_timeout_s)
            except ClientGone:
                self._finish(scope, 499, started)  # nginx's "client closed request"
                return
            except BodyError as exc:
                await answer_and_drain(
                    send, receive, exc.status, exc.code, exc.message, drain=not exc.ended
                )
                self._finish(scope, exc.status, started)
                return
            problem = json_problem(body) if json_body else None
            if problem is not None:
                await _send_error(send, 400, "invalid_json", problem)
                self._finish(scope, 400, started)
                return
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
        replayed = False

        async def replay() -> Message:
            """The body read above, then the connection's own messages (a disconnect)."""
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        direct = self.direct.get(path) if scope.get("method") == "POST" else None
        if direct is not None and _media(headers.get(b"content-type", b"")) != b"application/json":
            direct = None  # FastAPI's own content-type rules apply
        self.in_flight += counted
        try:
            if direct is not None:
                await direct(scope, body, send_wrapper)
            else:
                await self.app(scope, replay, send_wrapper)
        finally:
            self.in_flight -= counted
        self._finish(scope, int(status_holder["status"]), started)

    def _finish(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        self.observe(_route_label(scope), scope.get("method", ""), status, elapsed)
        state: dict[str, Any] = scope.get("state", {})
        if scope["path"] in LOGGED_ROUTES and not state.get("logged"):
            self.log_failure(scope, status, elapsed * 1000)
