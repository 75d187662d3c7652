"""Tiny HTTP servers that answer their version name, to count where traffic went."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class VersionServer:
    """A server answering ``<name>\\n`` on every path."""

    name: str
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _handler(name: str) -> type[BaseHTTPRequestHandler]:
    body = f"{name}\n".encode()
    # One write per response: headers and body written apart meet the peer's delayed ACK
    # (Nagle), which costs ~40 ms per request on loopback.
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.wfile.write(response)

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
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(name))
            server.daemon_threads = True
            servers.append(server)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            threads.append(thread)
            found[name] = VersionServer(name, server.server_address[1])
        yield found
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)
