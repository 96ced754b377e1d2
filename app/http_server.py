"""uvicorn around the app, hardened at the connection level (issue 17).

* Request heads have a size limit (``SLOTFILL_MAX_HEADER_BYTES``, 431) and a time limit
  (``SLOTFILL_HEADER_TIMEOUT_SECONDS``, 408): uvicorn's httptools protocol keeps growing a
  head and waits for its end for ever. A connection that sends nothing is closed after the
  same time.
* Malformed requests uvicorn itself refuses (400) get the one JSON error shape too.
* A refused connection is closed the way nginx's lingering close does it: the answer, then a
  FIN, then what the client still sends is read (a bounded amount) and dropped, so that the
  client reads the answer instead of a reset.
* Several workers are forked from the supervisor after it has loaded the app (imports,
  settings, ``create_app``; not the lifespan: models, database, threads and time zones are
  each worker's), like gunicorn's ``--preload``: uvicorn spawns each worker as a fresh
  interpreter that imports everything again, about a second of CPU before it can load its
  models (issue 18, cold start). A worker that dies is forked again from the same loaded
  app, so new code on disk needs a new server, not a worker restart.
* Several workers each listen on a socket of their own (``SO_REUSEPORT``, Linux; setting
  ``SLOTFILL_REUSE_PORT``), bound to the address the supervisor reserved (bound, never
  listening: it fails fast on a taken port and holds the port for restarted workers). The
  kernel spreads new connections over the workers' sockets by address; on one shared socket
  the worker that wakes first accepts every connection waiting, and with keep-alive clients
  that open their connections together (a load test's 32, a client's pool) it then serves
  them all while the other worker idles. The price: a worker killed outright takes the
  connections still waiting in its own backlog with it, where on a shared socket another
  worker would accept them.
* SIGTERM: the supervisor closes its socket (the shared one, or the reservation) before it
  stops the workers, so that once the workers closed theirs new connections are refused
  rather than left in a listen backlog to be reset when the supervisor exits. A worker
  accepts what is still in its listen backlog right before it closes its socket (the kernel
  resets every connection left in a backlog when the last copy of that socket closes, and a
  worker's own socket has one copy; the client has already sent its request by then), and
  a connection the worker accepted but whose request has not arrived yet gets a moment to
  send it (and is served, with ``Connection: close``) instead of being dropped. A keep-alive
  connection between requests is not closed at once (a client may be reusing it that
  instant): its next request is served with ``Connection: close``, or the client closes it,
  or the keep-alive timeout, cut to ``STOP_IDLE_S``, does.
* Keep-alive: idle connections stay open ``SLOTFILL_KEEP_ALIVE_SECONDS`` (75 s; uvicorn's
  default is 5 s), longer than the proxy's and the clients' own idle timeouts, so that they
  close an idle connection first. A server that closes one first races a client reusing it,
  and the client's request is reset (uvicorn's 5 s against httpx's 5 s expiry: a load
  test's ``ReadError`` once the load ran longer than 5 s).
* Before that, a worker stops taking new handshakes and lets those in flight finish: a
  socket filter drops each new SYN on its own listening socket (Linux; a socket shared
  with other workers is left alone) for ``HANDSHAKE_GRACE_S``,
  then the backlog is drained and the socket closed. A handshake still in flight when a
  listening socket closes is otherwise answered with a reset once the client's ACK arrives,
  and the client, whose ``connect()`` has already returned, sees its request reset. A SYN
  dropped this way is sent again by the client a second later and then refused (or taken
  by a worker still listening).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import json
import logging
import multiprocessing
import signal
import socket
import struct
import sys
from asyncio import TimerHandle
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import multiprocess

from app.config import get_settings

PROTOCOL = "app.http_server:GuardedHttpToolsProtocol"
LINGER_S = 5.0  # how long a refused connection is read from before it is closed
LINGER_BYTES = 1 << 20  # and how much of it
STOP_GRACE_S = 1.0  # a new connection's time to send its first request after SIGTERM
STOP_IDLE_S = 5  # a stopping worker's keep-alive timeout (the setting's, if shorter)
HANDSHAKE_GRACE_S = 0.25  # time for handshakes in flight to complete before a listener closes
SO_ATTACH_FILTER = 26  # Linux, <asm-generic/socket.h>
# Classic BPF on a TCP socket sees the TCP header at offset 0; byte 13 holds the flags.
# Drop a segment whose SYN is set and ACK clear (a new connection), pass every other one.
_DROP_NEW_SYN = (
    (0x30, 0, 0, 13),  # ldb [13]
    (0x54, 0, 0, 0x12),  # and #(SYN|ACK)
    (0x15, 0, 1, 0x02),  # jeq #SYN, drop, pass
    (0x06, 0, 0, 0),  # drop: ret #0
    (0x06, 0, 0, 0xFFFFFFFF),  # pass: ret #-1
)
_PHRASES = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}
_limits: tuple[int, float] | None = None
logger = logging.getLogger("slotfill.http")


def _head_limits() -> tuple[int, float]:
    """Read once per worker process, like the app's own settings."""
    global _limits
    if _limits is None:
        settings = get_settings()
        _limits = (settings.max_header_bytes, settings.header_timeout_seconds)
    return _limits


def error_response_bytes(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response in the one error shape, closing the connection."""
    # Imported here: app.errors imports FastAPI (0.2-0.3 s), which the supervisor process,
    # importing this module to spawn the workers, never needs; a worker has it loaded already.
    from app.errors import error_body

    body = json.dumps(error_body(code, message)).encode()
    head = (
        f"HTTP/1.1 {status} {_PHRASES.get(status, '')}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on request heads and a lingering close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes, self.head_timeout_s = _head_limits()
        self.in_head = True  # reading a request head (or waiting for the next one)
        self.head_bytes = 0  # read since the head began (may include some body)
        self.head_size = 0  # of the head's URL and fields, as parsed
        self.head_timer: TimerHandle | None = None
        self.linger_bytes = -1  # >= 0 once refused: bytes read and dropped since
        self.stopping = False

    # -- connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        # uvicorn cancels its keep-alive timer only on a clean close: after a reset the timer
        # would hold this protocol (and its last request) for the whole keep-alive timeout.
        self._unset_keepalive_if_required()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.linger_bytes >= 0:  # refused: read and drop, within bounds
            self.linger_bytes += len(data)
            if self.linger_bytes > LINGER_BYTES:
                self.transport.close()
            return
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_timer is None:
                self._arm_head_timer()
        super().data_received(data)
        if self.in_head and self.head_bytes > self.max_head_bytes and self.linger_bytes < 0:
            self.refuse(  # before it grows any further
                431,
                "request_header_fields_too_large",
                f"request head over {self.max_head_bytes} bytes",
            )

    # -- parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_size = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self.head_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._cancel_head_timer()
        if self.head_size > self.max_head_bytes:  # a long head that arrived in one read
            self.refuse(
                431,
                "request_header_fields_too_large",
                f"request head over {self.max_head_bytes} bytes",
            )
            return
        super().on_headers_complete()
        if self.stopping and self.cycle is not None:
            self.cycle.keep_alive = False  # served, then closed: the worker is stopping

    def on_body(self, body: bytes) -> None:
        if self.linger_bytes < 0:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.linger_bytes >= 0:
            return
        super().on_message_complete()
        self.in_head, self.head_bytes = True, 0

    # -- refusals

    def send_400_response(self, msg: str) -> None:
        self.refuse(400, "bad_request", "malformed HTTP request")

    def refuse(self, status: int, code: str, message: str) -> None:
        """Answer in the error shape, send FIN, drop what still comes; close after a while."""
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A response is on its way (this is a pipelined request): it is the last one.
            self.cycle.keep_alive = False
            self.linger_bytes = 0
            return
        self.transport.write(error_response_bytes(status, code, message))
        self.linger_bytes = 0
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self.head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.in_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined head behind a response on its way; keep-alive ends it
        if self.head_bytes == 0:
            self.transport.close()  # nothing sent: no request to answer
        else:
            self.refuse(
                408, "request_timeout", f"request head not received within {self.head_timeout_s:g}s"
            )

    # -- graceful shutdown

    def shutdown(self) -> None:
        """Called once the worker stopped accepting; every request from now on is answered
        with ``Connection: close``, and so is the one in progress if its head is yet to go.

        A connection between two requests is not closed at once: the client may be sending
        its next one on it at that very moment, and closing a socket that has unread data (or
        gets some after) resets it, the request lost (a 1 s close reset 2 of 200 requests
        sent on idle connections within 80 ms of it). Its next request is served and closes
        it; if none comes, the keep-alive timeout, cut to ``STOP_IDLE_S`` by the stop, closes
        it (a client whose own idle expiry is that or shorter, httpx's, has dropped it by
        then). A connection still to send its first request gets ``STOP_GRACE_S``, a half-read
        head its head timer."""
        self.stopping = True
        self.timeout_keep_alive = min(self.timeout_keep_alive, STOP_IDLE_S)
        cycle = self.cycle
        if cycle is None:
            self.loop.call_later(STOP_GRACE_S, self._close_if_unused)
        elif not cycle.response_complete:
            if not cycle.response_started:
                cycle.keep_alive = False
            # else its head promised keep-alive: the shortened timer starts when it completes.
        elif self.timeout_keep_alive_task is not None:  # idle between two requests
            due = min(self.timeout_keep_alive_task.when(), self.loop.time() + STOP_IDLE_S)
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = self.loop.call_at(due, self.timeout_keep_alive_handler)

    def _close_if_unused(self) -> None:
        if self.cycle is None and self.head_bytes == 0 and not self.transport.is_closing():
            self.transport.close()


class DrainingServer(uvicorn.Server):
    """uvicorn's server, accepting what waits in the listen backlog before it stops listening.

    Without this, a connection that completed its handshake (and sent its request) just
    before the last worker closed the shared listening socket is reset by the kernel.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._refuse_new_handshakes():
            await asyncio.sleep(HANDSHAKE_GRACE_S)  # the loop keeps accepting meanwhile
        waiting = self._accept_backlog()
        # Closed in the same step as the draining accept (no await in between), so that
        # the window in which a new connection can still enter the backlog is microseconds.
        for server in self.servers:
            server.close()
        if waiting:
            logger.info("Serving %d connection(s) taken from the listen backlog", len(waiting))
            factory = functools.partial(
                self.config.http_protocol_class,  # type: ignore[call-arg]
                config=self.config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
            )
            loop = asyncio.get_running_loop()
            for conn in waiting:
                await loop.connect_accepted_socket(factory, conn)
        await super().shutdown(sockets)

    def _refuse_new_handshakes(self) -> bool:
        """Drop new SYNs on the TCP listening sockets this process alone listens on (its
        ``SO_REUSEPORT`` socket, or every socket of a single-process server); whether any.
        A listening socket shared by several workers is left alone: it outlives one worker's
        stop (SIGTTOU stops one), and a filter on it would stay on for the others."""
        listeners = [
            listener
            for server in self.servers
            for listener in server.sockets
            if listener.family in (socket.AF_INET, socket.AF_INET6)
            and (self.config.workers <= 1 or _reuses_port(listener))
        ]
        return sys.platform == "linux" and sum(map(drop_new_syns, listeners)) > 0

    def _accept_backlog(self) -> list[socket.socket]:
        waiting: list[socket.socket] = []
        for server in self.servers:
            for listener in server.sockets:
                with listener.dup() as sock:
                    sock.setblocking(False)
                    while True:
                        try:
                            conn, _ = sock.accept()
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError:  # closed under us: nothing left to drain
                            break
                        conn.setblocking(False)
                        waiting.append(conn)
        return waiting


_FORK = multiprocessing.get_context("fork")


class WorkerProcess(multiprocess.Process):
    """A supervised worker running a :class:`DrainingServer`, forked from the supervisor."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        # uvicorn's Process.__init__, with a forked process where uvicorn spawns one.
        self.config = config
        self._server: uvicorn.Server | None = None
        self.parent_conn, self.child_conn = multiprocessing.Pipe()
        self.process = _FORK.Process(  # type: ignore[assignment]
            target=_forked_worker,
            kwargs={"config": config, "target": self.target, "sockets": sockets},
        )

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


def _forked_worker(config: uvicorn.Config, target: Any, sockets: list[socket.socket]) -> None:
    """A worker's process: what uvicorn's ``subprocess_started`` does in a spawned one, after
    giving back the default handlers of the signals the supervisor catches for itself. A
    reserved ``SO_REUSEPORT`` address gets a listening socket of this worker's own."""
    for sig in multiprocess.SIGNALS:
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        signal.signal(sig, default)
    config.configure_logging()
    if any(_reuses_port(sock) for sock in sockets):
        own = [reuse_port_socket(sock.family, sock.getsockname()) for sock in sockets]
        for sock in sockets:
            sock.close()
        sockets = own
    with contextlib.suppress(KeyboardInterrupt):  # stopped by the supervisor: nothing to say
        target(sockets=sockets)


class Supervisor(multiprocess.Multiprocess):
    """uvicorn's worker supervisor, closing its listening socket first on SIGTERM/SIGINT."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The supervisor builds its workers by this module-level name (at start, on a
        # restart, on SIGTTIN).
        multiprocess.Process = WorkerProcess  # type: ignore[misc]

    def _stop_listening(self) -> None:
        for sock in self.sockets:
            sock.close()

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()


def load_app(config: uvicorn.Config) -> None:
    """Import and build the app (``config.load()``) without the cyclic garbage collector,
    then freeze what was loaded out of its reach. Importing creates some 120,000 long-lived
    objects and next to no garbage, yet set off about 290 collections (0.14-0.19 s of CPU);
    and frozen objects are not scanned again by the workers' collections, which would also
    copy their pages into each forked worker."""
    gc.disable()
    try:
        config.load()
    finally:
        gc.freeze()
        gc.enable()


def reuse_port_socket(family: int, address: Any) -> socket.socket:
    """A TCP socket bound to ``address`` with ``SO_REUSEPORT`` (and ``SO_REUSEADDR``, as
    uvicorn binds); not listening. Raises ``OSError``."""
    sock = socket.socket(family=family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def drop_new_syns(sock: Any) -> bool:
    """Attach the SYN-dropping filter to a TCP socket (or asyncio's wrapper of one); whether
    the kernel took it. Segments of connections already open or half open still pass."""
    program = ctypes.create_string_buffer(
        b"".join(struct.pack("HBBI", *insn) for insn in _DROP_NEW_SYN)
    )
    # struct sock_fprog {unsigned short len; struct sock_filter *filter}: the kernel copies
    # the program during the call, so the buffer need only outlive it.
    fprog = struct.pack("HL", len(_DROP_NEW_SYN), ctypes.addressof(program))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


def _reuses_port(sock: socket.socket) -> bool:
    return hasattr(socket, "SO_REUSEPORT") and bool(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    )


def _reserve(config: uvicorn.Config, reuse_port: bool) -> socket.socket:
    """The supervisor's socket: uvicorn's shared one, or the address reserved for the
    workers' own sockets (TCP on Linux; a Unix socket or an inherited fd is always shared)."""
    if not (reuse_port and sys.platform == "linux" and config.uds is None and config.fd is None):
        return config.bind_socket()
    family = socket.AF_INET6 if config.host and ":" in config.host else socket.AF_INET
    try:
        sock = reuse_port_socket(family, (config.host, config.port))
    except OSError as exc:
        logging.getLogger("uvicorn.error").error(exc)
        sys.exit(STARTUP_FAILURE)
    host, port = sock.getsockname()[:2]
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d, a listening socket per worker (Press CTRL+C to quit)",
        f"[{host}]" if family == socket.AF_INET6 else host,
        port,
    )
    return sock


def run(app: str, **options: Any) -> None:
    """``uvicorn.run(app, **options)`` with the protocol and the supervisor above."""
    config = uvicorn.Config(app, http=PROTOCOL, **options)
    load_app(config)  # once, here: forked workers start with the app loaded
    server = DrainingServer(config)
    if config.workers > 1:
        reserved = _reserve(config, get_settings().reuse_port)
        Supervisor(config, sockets=[reserved]).run()
        return
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
