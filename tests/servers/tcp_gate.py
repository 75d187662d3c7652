"""A TCP forwarder on loopback that can be shut like a gate: a network partition on demand.

While the gate is shut, bytes already sent wait (nothing is read or forwarded), so
a client's requests hang as they would behind a cut link; opening it lets them
through. TLS passes through untouched: the client still talks to the real server.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator


class TcpGate:
    """Forwards ``127.0.0.1:port`` to ``upstream``; ``shut()`` and ``open()`` the link."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def shut(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def start(self) -> None:
        self._spawn(self._accept)

    def stop(self) -> None:
        self._stopping.set()
        self._open.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=10)
            self._spawn(self._pump, client, server)

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        with client, server:
            peers = {client: server, server: client}
            while not self._stopping.is_set():
                self._open.wait()
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                if not self._open.is_set():
                    continue  # shut meanwhile: what arrived waits
                for sock in readable:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    peers[sock].sendall(data)


@contextlib.contextmanager
def gate(upstream: tuple[str, int]) -> Iterator[TcpGate]:
    forwarder = TcpGate(upstream)
    forwarder.start()
    try:
        yield forwarder
    finally:
        forwarder.stop()
