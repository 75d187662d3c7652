"""Limits for every HTTP listener rollguard opens, so slow or idle clients cannot exhaust it.

uvicorn closes an idle keep-alive connection, but not a client that connects
and sends nothing, or sends its headers or its body a byte at a time
(Slowloris): each holds a file descriptor for as long as it likes, and a
thousand of them take the process's last descriptors. :func:`guarded_http`
gives uvicorn an HTTP protocol (its ``httptools`` one, extended) that adds:

- a deadline for a request's headers, counted from the connection (or the end
  of the previous response), answered ``408`` and closed when missed;
- a deadline for its body, counted from the end of its headers, closed when missed;
- a cap on open connections. At the cap a new connection first closes the
  connection that has waited longest without a complete request (the slow
  client, never one whose request is being answered), and is itself refused
  (``503``) only when every connection is busy with a real request. So under
  a flood of idle connections ``/healthz`` still answers.

``serve``'s API and the Falco receiver both listen through it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import uvicorn
import uvicorn.config
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState


def _answer(status: str, error: str, detail: str) -> bytes:
    """A whole HTTP response that closes the connection, in the API's error shape."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


_REFUSED = _answer("503 Service Unavailable", "service_unavailable", "too many connections")
_TIMED_OUT = _answer("408 Request Timeout", "request_timeout", "the request did not arrive in time")


@dataclass(frozen=True)
class Limits:
    """How long a request may take to arrive, and how many connections may be open."""

    header_seconds: float = 10.0
    body_seconds: float = 10.0
    keep_alive_seconds: int = 5  # uvicorn's own idle timeout, whole seconds
    max_connections: int = 256

    def __post_init__(self) -> None:
        if min(self.header_seconds, self.body_seconds, self.keep_alive_seconds) <= 0:
            raise ValueError("listener timeouts must be positive")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")


#: Per server: the connections waiting for a request to arrive, oldest first.
_WAITING: weakref.WeakKeyDictionary[ServerState, dict[GuardedHttp, None]] = (
    weakref.WeakKeyDictionary()
)


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with request deadlines and a connection cap."""

    limits: ClassVar[Limits] = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting = _WAITING.setdefault(self.server_state, {})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            slowest = next(iter(self._waiting), None)
            if slowest is None:  # every connection is being answered: refuse this one
                transport.write(_REFUSED)
                transport.close()
                return
            slowest._give_up(answer=b"")
        self._await(self.limits.header_seconds)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._await(self.limits.body_seconds)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await(self.limits.header_seconds)  # for the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _await(self, seconds: float) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(seconds, self._timed_out)
        self._waiting.setdefault(self, None)  # keeps its place: waiting since it began

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting.pop(self, None)

    def _timed_out(self) -> None:
        self._deadline = None
        # Headers incomplete: nothing is answering yet, so the 408 is ours to send.
        self._give_up(
            answer=_TIMED_OUT if self.cycle is None or self.cycle.response_complete else b""
        )

    def _give_up(self, *, answer: bytes) -> None:
        self._stop_waiting()
        if self.transport.is_closing():
            return
        if answer:
            self.transport.write(answer)
        self.transport.close()


def guarded_http(limits: Limits) -> type[GuardedHttp]:
    """The protocol class to give uvicorn (``Config(http=...)``) for these limits."""
    return type("GuardedHttpWithLimits", (GuardedHttp,), {"limits": limits})


def make_server(
    app: ASGIApp,
    *,
    limits: Limits,
    log_level: str = "warning",
    lifespan: Literal["on", "off"] = "on",
    configure_logging: bool = True,
) -> uvicorn.Server:
    """A uvicorn server for ``app`` with these limits; run it on a socket from :func:`bind`."""
    config = uvicorn.Config(
        app,
        http=guarded_http(limits),
        timeout_keep_alive=limits.keep_alive_seconds,
        log_level=log_level,
        access_log=False,
        lifespan=lifespan,
        interface="asgi3",
        proxy_headers=False,  # nothing here reads the client's address
        log_config=uvicorn.config.LOGGING_CONFIG if configure_logging else None,
    )
    return uvicorn.Server(config)


def bind(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6); OSError as the system says."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock
