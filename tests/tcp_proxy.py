"""A TCP proxy of the tests' own, for database outages: ``stop()`` is the outage, ``start()``
its end. Used by ``tests/db`` (``pg_proxy``) and ``tests/reliability`` (a real server's log
database goes away under load).

Importable by name (``from tcp_proxy import TcpProxy``): ``tests/`` is on ``sys.path`` under
pytest's default import mode, as it holds the root ``conftest.py`` and no ``__init__.py``.
"""

from __future__ import annotations

import selectors
import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `stop()` is a database outage, `start()` the end.

    The port stays the same across restarts, so an engine pointed at the proxy sees the
    server vanish (connections reset, new ones refused) and come back. `connections` counts
    the client connections accepted so far (all runs together).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # While stopped, the port stays bound (not listening): connects are refused, and the
        # kernel cannot hand the port out as the ephemeral source port of a client connecting
        # to it, which would make that connect a TCP self-connect to nobody.
        self._reserved: socket.socket | None = None

    @property
    def running(self) -> bool:
        """Whether it accepts and forwards connections now."""
        return self._thread is not None

    def start(self) -> None:
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join(5)
        if self._thread.is_alive():
            raise RuntimeError("the proxy thread did not stop within 5 s")
        self._thread = None
        reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.bind(("127.0.0.1", self.port))
        self._reserved = reserved

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop for good: also free the port."""
        self.stop()
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    def _serve(self, listener: socket.socket) -> None:
        # One thread and a selector: stopping closes every socket deterministically.
        peers: dict[socket.socket, socket.socket] = {}
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)

        def close_pair(sock: socket.socket) -> None:
            for s in (sock, peers.pop(sock, None)):
                if s is not None:
                    peers.pop(s, None)
                    sel.unregister(s)
                    s.close()

        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.02):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is listener:
                        client, _ = listener.accept()
                        try:
                            upstream = socket.create_connection(self.target, timeout=3)
                        except OSError:
                            client.close()
                            continue
                        upstream.settimeout(None)
                        self.connections += 1
                        peers[client], peers[upstream] = upstream, client
                        sel.register(client, selectors.EVENT_READ)
                        sel.register(upstream, selectors.EVENT_READ)
                    elif sock in peers:
                        try:
                            data = sock.recv(65536)
                            if data:
                                peers[sock].sendall(data)
                                continue
                        except OSError:
                            pass
                        close_pair(sock)
        finally:
            for sock in list(peers):
                if sock in peers:
                    close_pair(sock)
            sel.unregister(listener)
            listener.close()
            sel.close()
