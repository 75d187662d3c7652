"""A small keep-alive HTTP/1.1 client for the demo's loopback hops.

Why not httpx here: measured on the 2-core CI machine, an ``httpx.AsyncClient``
request costs about 6 ms of CPU, so the load generator and the router alone
would need most of a core for 50 requests a second, and users' latency in the
demo would measure the client instead of the canary. This client speaks just
enough HTTP/1.1 for servers we run ourselves on 127.0.0.1 (Content-Length or
chunked bodies, keep-alive, ``Connection: close``) at a fraction of that cost.
It is not a general-purpose client: no TLS, no proxies, no redirects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024


class Http1Error(Exception):
    """No usable answer: connection refused or reset, timeout, or a malformed response."""


@dataclass(frozen=True)
class Http1Response:
    """A complete response."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_FAILURES = (OSError, EOFError, ValueError, asyncio.LimitOverrunError, Http1Error)


class Http1Pool:
    """Keep-alive connections per host:port, at most ``max_connections`` each."""

    def __init__(self, *, max_connections: int = 100, timeout_seconds: float = 30.0) -> None:
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._max = max_connections
        self._timeout = timeout_seconds

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> Http1Response:
        """Send one request and read the whole response; raises :class:`Http1Error`."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise Http1Error(f"only http:// URLs are supported, got {url!r}")
        key = (parts.hostname, parts.port or 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
        head += [f"{name}: {value}" for name, value in headers or []]
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body)}")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        slots = self._slots.setdefault(key, asyncio.Semaphore(self._max))
        async with slots:
            try:
                return await asyncio.wait_for(self._exchange(key, payload, method), self._timeout)
            except TimeoutError:
                raise Http1Error(f"{method} {url}: no answer within {self._timeout:g}s") from None

    async def _exchange(self, key: tuple[str, int], payload: bytes, method: str) -> Http1Response:
        idle = self._idle.setdefault(key, deque())
        reused = bool(idle)
        connection = idle.pop() if reused else await self._connect(key)
        try:
            response, keep = await _send(connection, payload, method)
        except _FAILURES as exc:
            _close(connection)
            if not reused:
                raise _wrap(exc, key) from exc
            # A kept-alive connection the server has since closed: one fresh try.
            connection = await self._connect(key)
            try:
                response, keep = await _send(connection, payload, method)
            except _FAILURES as again:
                _close(connection)
                raise _wrap(again, key) from again
            except BaseException:
                _close(connection)
                raise
        except BaseException:  # cancelled (timeout): the connection is in an unknown state
            _close(connection)
            raise
        if keep:
            idle.append(connection)
        else:
            _close(connection)
        return response

    async def _connect(self, key: tuple[str, int]) -> _Connection:
        try:
            return await asyncio.open_connection(*key, limit=MAX_HEADER_BYTES)
        except OSError as exc:
            raise _wrap(exc, key) from exc

    async def aclose(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            while idle:
                _close(idle.pop())


async def _send(connection: _Connection, payload: bytes, method: str) -> tuple[Http1Response, bool]:
    reader, writer = connection
    writer.write(payload)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        version, code, *_ = lines[0].split(" ", 2)
        status = int(code)
    except ValueError:
        raise Http1Error(f"malformed status line {lines[0]!r}") from None
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    response = Http1Response(status, headers, b"")
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif (response.header("transfer-encoding") or "").lower() == "chunked":
        body = await _read_chunked(reader)
    elif (length := response.header("content-length")) is not None:
        body = await reader.readexactly(int(length))
    else:  # delimited by the connection closing
        body = await reader.read()
        return Http1Response(status, headers, body), False
    closing = (response.header("connection") or "").lower() == "close"
    keep = version == "HTTP/1.1" and not closing
    return Http1Response(status, headers, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _close(connection: _Connection) -> None:
    with contextlib.suppress(Exception):
        connection[1].close()


def _wrap(exc: BaseException, key: tuple[str, int]) -> Http1Error:
    if isinstance(exc, Http1Error):
        return exc
    reason = str(exc) or type(exc).__name__
    return Http1Error(f"http://{key[0]}:{key[1]}: {reason}")
