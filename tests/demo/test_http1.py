"""The demo's HTTP/1.1 client against real sockets: uvicorn, and raw servers that misbehave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from rollguard.demo.http1 import Http1Error, Http1Pool
from rollguard.demo.servers import ThreadServer, serve_in_thread
from support import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _chunks() -> AsyncIterator[bytes]:
    for part in (b"alpha-", b"beta-", b"gamma"):
        yield part


async def _stream(_: Request) -> Response:
    return StreamingResponse(_chunks(), media_type="text/plain")


async def _echo(request: Request) -> Response:
    body = await request.body()
    return Response(body, headers={"x-method": request.method, "x-echo": request.headers["x-in"]})


@pytest.fixture(scope="module")
def app_server() -> Iterator[ThreadServer]:
    app = Starlette(
        routes=[Route("/stream", _stream), Route("/echo", _echo, methods=["POST", "PUT"])]
    )
    server = serve_in_thread(app)
    yield server
    server.stop()


def test_chunked_bodies_are_reassembled(app_server: ThreadServer) -> None:
    async def scenario() -> bytes:
        pool = Http1Pool()
        try:
            answer = await pool.request("GET", f"{app_server.url}/stream")
            assert answer.header("Transfer-Encoding") == "chunked"
            return answer.body
        finally:
            await pool.aclose()

    assert asyncio.run(scenario()) == b"alpha-beta-gamma"


def test_bodies_and_headers_reach_the_server(app_server: ThreadServer) -> None:
    async def scenario() -> tuple[int, bytes, str | None, str | None]:
        pool = Http1Pool()
        try:
            answer = await pool.request(
                "PUT", f"{app_server.url}/echo", headers=[("X-In", "42")], body=b'{"a": 1}'
            )
            return answer.status, answer.body, answer.header("x-method"), answer.header("x-echo")
        finally:
            await pool.aclose()

    assert asyncio.run(scenario()) == (200, b'{"a": 1}', "PUT", "42")


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def _responder(
    connections: list[int], *, close_after: bool = False, header: bytes = b""
) -> Handler:
    """A raw HTTP/1.1 server answering 'ok'; counts connections; may hang up after each answer."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + header + b"\r\nok")
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


@pytest.mark.parametrize(
    ("close_after", "header", "expected_connections"),
    [
        (False, b"", 1),  # kept alive: one connection for every request
        (False, b"Connection: close\r\n", 3),  # the server says it will close
        (True, b"", 3),  # the server hangs up silently: the stale connection is retried
    ],
)
def test_connections_are_reused_only_while_the_server_keeps_them(
    close_after: bool, header: bytes, expected_connections: int
) -> None:
    connections: list[int] = []

    async def scenario() -> list[bytes]:
        server, url = await _serve(_responder(connections, close_after=close_after, header=header))
        pool = Http1Pool()
        try:
            bodies = []
            for _ in range(3):
                bodies.append((await pool.request("GET", f"{url}/x")).body)
                await asyncio.sleep(0.05)  # let a hang-up reach us before the next request
            return bodies
        finally:
            await pool.aclose()
            server.close()

    assert asyncio.run(scenario()) == [b"ok"] * 3
    assert len(connections) == expected_connections


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"<html>not http</html>\r\n\r\n")
        await writer.drain()
    finally:
        writer.close()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("handler", "message"), [(_garbage, "malformed status line"), (_silent, "no answer within")]
)
def test_a_misbehaving_server_is_an_error(handler: Handler, message: str) -> None:
    async def scenario() -> None:
        server, url = await _serve(handler)
        pool = Http1Pool(timeout_seconds=0.5)
        try:
            await pool.request("GET", f"{url}/x")
        finally:
            await pool.aclose()
            server.close()

    with pytest.raises(Http1Error, match=message):
        asyncio.run(scenario())


def test_a_refused_connection_names_the_target() -> None:
    port = free_port()
    with pytest.raises(Http1Error, match=f"127.0.0.1:{port}"):
        asyncio.run(Http1Pool().request("GET", f"http://127.0.0.1:{port}/x"))


def test_only_plain_http_is_spoken() -> None:
    with pytest.raises(Http1Error, match="only http://"):
        asyncio.run(Http1Pool().request("GET", "https://127.0.0.1/x"))
