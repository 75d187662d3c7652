"""A real HTTP server on loopback answering every request with a document a test chose.

For the providers of services that cannot run here (Loki, Datadog, New Relic):
the test sets the status and the vendor's documented answer, the provider runs
its whole HTTP path against it, and ``requests`` keeps what the provider sent
(method, path, query, headers, body) so the test can check the request too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from servers.loopback import serving


@dataclass(frozen=True)
class Sent:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Documented:
    """What the server answers, and what it was asked."""

    url: str = ""
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    requests: list[Sent] = field(default_factory=list)

    def answer(self, body: bytes, *, status: int = 200, content_type: str = "") -> None:
        self.body, self.status = body, status
        self.content_type = content_type or "application/json"


@contextmanager
def documented_server() -> Iterator[Documented]:
    state = Documented()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            state.requests.append(
                Sent(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
            )
            self.send_response(state.status)
            self.send_header("Content-Type", state.content_type)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            return

    with serving(Handler) as port:
        state.url = f"http://127.0.0.1:{port}"
        yield state
