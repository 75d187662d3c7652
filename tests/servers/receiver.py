"""A real HTTP receiver on loopback that records every request it gets.

Tests queue the status codes it should answer with (default 200), for any path
or for one path (channels are sent concurrently, so their order is not fixed),
and an optional delay, then read back the recorded requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """The running receiver: its URL, what it got, what it will answer."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    statuses_by_path: dict[str, list[int]] = field(default_factory=dict)
    delay_seconds: float = 0.0
    retry_after: str | None = None  # a Retry-After header on every 429 and 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self, path: str) -> int:
        with self.lock:
            queued = self.statuses_by_path.get(path)
            if queued:
                return queued.pop(0)
            return self.statuses.pop(0) if self.statuses else 200


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.requests.append(
                    Received("POST", self.path, dict(self.headers.items()), body)
                )
            if receiver.delay_seconds:
                time.sleep(receiver.delay_seconds)
            status = receiver.next_status(self.path)
            self.send_response(status)
            if receiver.retry_after is not None and status in (429, 503):
                self.send_header("Retry-After", receiver.retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on a free loopback port, shut down after the test."""
    state = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
