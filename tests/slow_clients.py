"""Slow and idle clients for the listener tests: connections that never finish a request."""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Iterator

PARTIAL_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
PARTIAL_BODY = (
    b"POST /api/v1/deployments/cart/pause HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b'Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"reason": "'
)


@contextlib.contextmanager
def slow_clients(
    port: int, *, idle: int, headers: int, bodies: int
) -> Iterator[list[socket.socket]]:
    """Open ``idle`` silent connections, ``headers`` with half their headers sent and
    ``bodies`` with half their body sent; close what is left at the end."""
    opened: list[socket.socket] = []
    try:
        for count, first in ((idle, b""), (headers, PARTIAL_HEADERS), (bodies, PARTIAL_BODY)):
            for _ in range(count):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                if first:
                    sock.sendall(first)
                opened.append(sock)
        yield opened
    finally:
        for sock in opened:
            sock.close()


def wait_all_closed(sockets: list[socket.socket], *, timeout: float) -> int:
    """Wait until the server closed every socket (EOF or reset); how many it closed."""
    remaining = len(sockets)
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while remaining and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)  # a 408 or 503 answer first, then EOF
                except ConnectionResetError:
                    data = b""
                if not data:
                    selector.unregister(sock)
                    remaining -= 1
    return len(sockets) - remaining
