"""Tiny HTTP servers that answer their version name, to count where traffic went.

A server can be told to fail: with ``fault.fail_every = n`` every n-th request
is answered 500 (deterministic, so error rates are exact).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Fault:
    """Injected failures: every ``fail_every``-th request gets a 500 (0: none)."""

    fail_every: int = 0
    served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fails(self) -> bool:
        with self.lock:
            self.served += 1
            return self.fail_every > 0 and self.served % self.fail_every == 0


@dataclass(frozen=True)
class VersionServer:
    """A server answering ``<name>\\n`` on every path."""

    name: str
    port: int
    fault: Fault

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class _QuietServer(ThreadingHTTPServer):
    """Peers (HAProxy) closing keep-alive connections at shutdown are not errors here."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return


def _response(status: str, body: bytes) -> bytes:
    # One write per response: headers and body written apart meet the peer's delayed ACK
    # (Nagle), which costs ~40 ms per request on loopback.
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def _handler(name: str, fault: Fault) -> type[BaseHTTPRequestHandler]:
    body = f"{name}\n".encode()
    ok = _response("200 OK", body)
    failed = _response("500 Internal Server Error", body)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.wfile.write(failed if fault.next_fails() else ok)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def running_version_servers(*names: str) -> Iterator[dict[str, VersionServer]]:
    """One server per name on free loopback ports, stopped when the block ends."""
    servers: list[ThreadingHTTPServer] = []
    threads: list[threading.Thread] = []
    found: dict[str, VersionServer] = {}
    try:
        for name in names:
            fault = Fault()
            server = _QuietServer(("127.0.0.1", 0), _handler(name, fault))
            servers.append(server)
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            thread.start()
            threads.append(thread)
            found[name] = VersionServer(name, server.server_address[1], fault)
        yield found
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)
