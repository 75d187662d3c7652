"""A real HTTP server on loopback that answers every GET with what a test sets.

For hostile answers: a fixed body (any bytes), or an endless chunked stream to
show that a client stops reading at its limit (``sent`` counts what went out).
A Prometheus range selector (a ``query`` ending in ``]``) may get its own body.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from servers.loopback import serving


@dataclass
class Answers:
    """What the server answers next, and how much of an endless answer it sent."""

    url: str = ""
    body: bytes = b""
    range_body: bytes | None = None  # for a query ending in "]"; None: ``body``
    endless: bool = False
    endless_limit: int = 1 << 30
    sent: int = 0


@contextmanager
def answering() -> Iterator[Answers]:
    state = Answers()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            try:
                if not state.endless:
                    body = state.body
                    query = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
                    if state.range_body is not None and query.endswith("]"):
                        body = state.range_body
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b" " * 65536
                while state.sent < state.endless_limit:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    state.sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client stopped reading and hung up

        def log_message(self, format: str, *args: object) -> None:
            return

    with serving(Handler) as port:
        state.url = f"http://127.0.0.1:{port}"
        yield state
