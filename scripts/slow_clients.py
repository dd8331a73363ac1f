"""Hold N slow or idle anonymous HTTP connections open against a server (a slowloris client).

Three ways to hold a connection, each what an attacker (or a client on a bad link) does:

- ``headers``: send a request line, then the headers one byte at a time, never finishing them;
- ``body``: send complete headers announcing a body (plus any ``headers`` given, e.g. a
  signature so that the server must read the body), then the body one byte at a time;
- ``idle``: connect and send nothing.

When the server closes a connection the client opens a new one at once, so the server always
has ``count`` of them attached (``connects`` tells how many it took). The tests and
``bench/slow_clients_bench.py`` use it; by hand::

    python scripts/slow_clients.py 127.0.0.1:8000 50 headers /present    # Ctrl-C stops
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
import threading
import time
from collections.abc import Mapping
from itertools import count as counter
from types import TracebackType
from typing import Literal

Mode = Literal["headers", "body", "idle"]
MODES: tuple[Mode, ...] = ("headers", "body", "idle")
# Announced body size: under both services' 64 KiB limit, so the body is read, not refused.
BODY_BYTES = 4096


class SlowClients:
    """``count`` connections to ``host:port`` held in ``mode``, one byte per ``interval`` s.

    Use as a context manager: on entry every connection is open (or :class:`OSError` is raised
    after ``connect_timeout``); on exit all are closed.
    """

    def __init__(
        self,
        host: str,
        port: int,
        count: int,
        mode: Mode,
        *,
        path: str = "/",
        headers: Mapping[str, str] | None = None,
        interval: float = 0.2,
        connect_timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.count, self.mode = host, port, count, mode
        self.path, self.interval, self.connect_timeout = path, interval, connect_timeout
        self.headers = dict(headers or {})
        self.connects = 0
        self._open: dict[socket.socket, _Trickle] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def held(self) -> int:
        """How many connections are open right now."""
        with self._lock:
            return len(self._open)

    def __enter__(self) -> SlowClients:
        deadline = time.monotonic() + self.connect_timeout
        while self.held() < self.count:
            if time.monotonic() > deadline:
                self._close_all()
                raise OSError(f"could not open {self.count} connections to {self.port}")
            self._connect()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._close_all()

    def _connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        sock.setblocking(False)
        with self._lock:
            self._open[sock] = _Trickle(self.mode, self.host, self.path, self.headers)
            self.connects += 1

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.pop(sock, None)
        sock.close()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), {}
        for sock in sockets:
            sock.close()

    def _run(self) -> None:
        """Each interval: drop what the server closed, reopen to ``count``, send one byte each."""
        with selectors.DefaultSelector() as selector:
            while not self._stop.wait(self.interval):
                with self._lock:
                    current = dict(self._open)
                for sock, trickle in current.items():
                    if _closed_by_peer(sock, selector) or not trickle.send_next(sock):
                        self._drop(sock)
                while self.held() < self.count and not self._stop.is_set():
                    try:
                        self._connect()
                    except OSError:
                        break  # the backlog is full: try again next interval


class _Trickle:
    """The bytes one connection sends, one at a time (nothing in ``idle`` mode)."""

    def __init__(self, mode: Mode, host: str, path: str, headers: Mapping[str, str]) -> None:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{lines}"
        if mode == "idle":
            self._head = b""
        elif mode == "headers":
            self._head = request.encode()
        else:
            self._head = (
                f"{request}Content-Type: application/json\r\nContent-Length: {BODY_BYTES}\r\n\r\n"
            ).encode()
        self._mode = mode
        self._header_number = counter()
        self._pending = b""
        self._sent_head = False

    def send_next(self, sock: socket.socket) -> bool:
        """Send the head at once (first call), then one more byte; False if the send failed."""
        if self._mode == "idle":
            return True
        try:
            if not self._sent_head:
                sock.sendall(self._head)
                self._sent_head = True
                return True
            if not self._pending:
                # headers: a new short header line each time; body: JSON-ish filler.
                number = next(self._header_number)
                self._pending = (
                    f"X-Slow-{number}: x\r\n".encode() if self._mode == "headers" else b" "
                )
            sock.send(self._pending[:1])
            self._pending = self._pending[1:]
        except OSError:
            return False
        return True


def _closed_by_peer(sock: socket.socket, selector: selectors.BaseSelector) -> bool:
    """Whether the server closed (or reset) the connection; discard anything it answered."""
    selector.register(sock, selectors.EVENT_READ)
    try:
        if not selector.select(timeout=0):
            return False
        try:
            # An answer (a 400 or a timeout page) means the server is done with it too.
            sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True
    finally:
        selector.unregister(sock)


def main(argv: list[str]) -> int:
    """Hold the connections until interrupted, printing how many are held."""
    if len(argv) < 3 or argv[2] not in MODES:
        print("usage: slow_clients.py HOST:PORT COUNT headers|body|idle [PATH]", file=sys.stderr)
        return 2
    host, port = argv[0].rsplit(":", 1)
    mode = next(m for m in MODES if m == argv[2])
    path = argv[3] if len(argv) > 3 else "/"
    with (
        SlowClients(host, int(port), int(argv[1]), mode, path=path) as clients,
        contextlib.suppress(KeyboardInterrupt),
    ):
        while True:
            print(f"held {clients.held()}, connections opened {clients.connects}")
            time.sleep(2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
