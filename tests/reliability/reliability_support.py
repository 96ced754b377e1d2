"""Helpers of the reliability tests: a real ``slotfill serve`` process (started, stopped and
its log rows counted by :mod:`benchmarks.servers`, as the service benchmark does), a bounded
asyncio load client, a raw HTTP/1.1 client for malformed requests, and reads of the request log.

Imported by name (``from reliability_support import ...``): ``tests/reliability`` is on
``sys.path`` under pytest's default import mode, as it has no ``__init__.py``.

All traffic goes to 127.0.0.1, and every loop is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from app.db import RequestLog, make_engine, make_session_factory
from app.http_server import PROTOCOL, DrainingServer
from benchmarks import servers
from benchmarks.servers import HOST, Server
from benchmarks.servers import REPO_ROOT as REPO_ROOT  # the tests import it from here

READY_TIMEOUT_S = 180.0  # two workers importing torch on a busy 2-core machine
# Utterances of the load: the tiny tagger finds slots in several of them.
TEXTS = [
    "book a table for two at 7pm",
    "table for 4 tomorrow at noon please",
    "what is the weather in paris",
    "hello there",
    "I loved the food, terrible service though",
    "reserve a table for six at 8pm in rome",
    "cancel my booking for friday",
    "thanks, that was great",
]


# --------------------------------------------------------------------------- the server


def server_env(store: Path, database_url: str, spill_dir: Path, **settings: Any) -> dict[str, str]:
    """The process environment: this machine's, minus any SLOTFILL_*, plus the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLOTFILL_")}
    values: dict[str, Any] = {
        "model_store": store,
        "default_model": "tiny",
        "sentiment_model": "tiny-sentiment",
        "database_url": database_url,
        "log_spill_dir": spill_dir,
        "torch_threads": 1,
    } | settings
    env.update({f"SLOTFILL_{k.upper()}": str(v) for k, v in values.items()})
    env["OMP_NUM_THREADS"] = "1"
    return env


@contextlib.contextmanager
def serve(env: dict[str, str], log_path: Path, workers: int = 2) -> Iterator[Server]:
    """``slotfill serve --workers N`` on a free port, every worker ready; killed (group) if
    still up after."""
    port = servers.free_port()
    command = servers.serve_command(port, workers)
    try:
        server = servers.start(command, port, workers, env, log_path, READY_TIMEOUT_S)
    except servers.ServerStartError as err:
        pytest.fail(str(err))
    try:
        if len(server.ready_pids) < workers:
            pytest.fail(
                f"only {len(server.ready_pids)} of {workers} workers ready:\n"
                + server.log()[-4000:]
            )
        yield server
    finally:
        servers.stop(server, timeout=60)


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The smallest ASGI app: ``200 ok`` to every request."""
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def start_in_process(
    app: Any = hello,
    *,
    server_class: type[uvicorn.Server] = DrainingServer,
    backlog: int = 8,
    reuse_port: bool = False,
    **options: Any,
) -> tuple[Any, socket.socket]:
    """A server (``server_class``) serving ``app`` on this event loop through the guarded
    protocol, on a listening socket of a free loopback port, returned for the caller to
    close after the server's shutdown. ``options`` go to ``uvicorn.Config``."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((HOST, 0))
    listener.listen(backlog)
    config = uvicorn.Config(
        app, **({"http": PROTOCOL, "lifespan": "off", "log_level": "warning"} | options)
    )
    config.load()
    server = server_class(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[listener])
    return server, listener


# --------------------------------------------------------------------------- load


@dataclass
class Outcome:
    """One request of a load run: status (0 if no response) and what the response said."""

    index: int
    route: str
    status: int = 0
    request_id: str | None = None
    results: list[dict[str, Any]] | None = None
    error: str | None = None
    detail: str | None = None
    started_at: float = 0.0
    done_at: float = 0.0


@dataclass
class Load:
    """A bounded closed-loop load: ``total`` requests from ``concurrency`` keep-alive clients.

    ``hold_from`` requests (by index) wait for ``gate`` before they are sent, so a fault
    injected mid-run always has requests before, during and after it.
    """

    base_url: str
    total: int
    concurrency: int
    headers: dict[str, str] = field(default_factory=dict)
    batch_every: int = 10  # every n-th request is a batch of 3 texts
    rasa_every: int = 10  # and one in n (another one) a Rasa parse; 0: none
    hold_from: int | None = None
    gate: asyncio.Event | None = None
    timeout_s: float = 30.0
    outcomes: list[Outcome] = field(default_factory=list)
    completed: int = 0

    def request_for(self, i: int) -> tuple[str, dict[str, Any]]:
        text = TEXTS[i % len(TEXTS)]
        if i % self.batch_every == 0:
            return "/v1/parse/batch", {"texts": [text, TEXTS[(i + 1) % len(TEXTS)], "hi"]}
        if self.rasa_every and i % self.rasa_every == self.rasa_every // 2:
            return "/model/parse", {"text": text, "message_id": f"m{i}"}
        return "/v1/parse", {"text": text}

    async def run(self) -> list[Outcome]:
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        timeout = httpx.Timeout(self.timeout_s, connect=10.0)
        next_index = 0

        async with httpx.AsyncClient(
            base_url=self.base_url, limits=limits, timeout=timeout, headers=self.headers
        ) as client:

            async def worker() -> None:
                nonlocal next_index
                while next_index < self.total:
                    i = next_index
                    next_index += 1
                    if self.hold_from is not None and i >= self.hold_from and self.gate:
                        await asyncio.wait_for(self.gate.wait(), 300)
                    self.outcomes.append(await self._one(client, i))
                    self.completed += 1

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return self.outcomes

    async def _one(self, client: httpx.AsyncClient, i: int) -> Outcome:
        route, body = self.request_for(i)
        outcome = Outcome(i, route, started_at=time.monotonic())
        try:
            response = await client.post(route, json=body)
        except httpx.HTTPError as err:
            outcome.error = type(err).__name__
            outcome.detail = f"{err!r}"[:200]
        else:
            outcome.status = response.status_code
            if response.status_code == 200:
                data = response.json()
                if route == "/v1/parse/batch":
                    outcome.results = data["results"]
                    outcome.request_id = data["results"][0]["request_id"]
                elif route == "/v1/parse":
                    outcome.results = [data]
                    outcome.request_id = data["request_id"]
            else:
                outcome.error = response.text[:200]
        outcome.done_at = time.monotonic()
        return outcome


def tally(outcomes: list[Outcome]) -> Counter[str]:
    """``{"200": n, "ConnectError": m, ...}``: statuses and transport errors."""
    return Counter(str(o.status) if o.status else (o.error or "error") for o in outcomes)


# --------------------------------------------------------------------------- the log


def log_rows(url: str) -> list[dict[str, Any]]:
    """Every request-log row as a dict of column values (read directly, not via the app)."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.scalars(select(RequestLog).order_by(RequestLog.id))
            return [
                {c.name: getattr(r, c.name) for c in RequestLog.__table__.columns} for r in rows
            ]
    finally:
        engine.dispose()


def count_rows(url: str) -> int:
    return servers.count_rows(url)


def wait_for_rows(url: str, want: int, timeout: float) -> int:
    """The row count once it reached ``want`` (and held for 0.5 s), or after ``timeout`` s."""
    rows, _ = servers.wait_for_rows(url, want, stall_s=timeout, cap_s=timeout)
    return rows


def spill_lines(spill_dir: Path) -> list[str]:
    """Rows waiting in the spill files now."""
    lines: list[str] = []
    for path in sorted(spill_dir.glob("spill-*.jsonl")):
        with contextlib.suppress(OSError):
            lines += path.read_text(errors="replace").splitlines()
    return lines


# --------------------------------------------------------------------------- raw HTTP


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def body_bytes(spec: dict[str, Any]) -> bytes:
    """A corpus body: ``json`` (a value), ``text`` (sent as UTF-8), ``base64`` or ``parts``
    (``[[text, times], ...]``, for bodies too big to keep in the repository)."""
    if "json" in spec:
        return json.dumps(spec["json"], ensure_ascii=spec.get("ascii", True)).encode()
    if "text" in spec:
        return str(spec["text"]).encode("utf-8", "surrogatepass")
    if "base64" in spec:
        return base64.b64decode(spec["base64"])
    if "parts" in spec:
        return b"".join(str(s).encode("utf-8") * int(n) for s, n in spec["parts"])
    return b""


def raw_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    chunk_size: int | None = None,
    content_length: str | None = None,
    timeout: float = 30.0,
) -> RawResponse | None:
    """Send one request over a new socket exactly as given; None if no response came back.

    The body goes out from a thread while the response is read, so a server that answers
    before reading the whole body (413) is not mistaken for one that hung. ``chunk_size``
    sends it chunked; ``content_length`` overrides the header (a lie, possibly).
    """
    head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    payload = body
    if chunk_size:
        head.append("Transfer-Encoding: chunked")
        pieces = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    elif content_length is not None:
        head.append(f"Content-Length: {content_length}")
    elif body or method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload

    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:

        def send() -> None:
            with contextlib.suppress(OSError):  # the server may stop reading early
                sock.sendall(data)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        response = http.client.HTTPResponse(sock, method=method)
        try:
            response.begin()
            content = response.read()
        except (OSError, http.client.HTTPException):
            return None
        sender.join(timeout)
        return RawResponse(
            response.status, {k.lower(): v for k, v in response.getheaders()}, content
        )
    finally:
        sock.close()


async def sleep_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
