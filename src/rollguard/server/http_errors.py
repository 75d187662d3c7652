"""Every error the API answers is JSON, and request bodies have a size limit.

FastAPI answers its own errors in several shapes; these handlers make them
one: ``{"error": code, "detail": ...}``. The body limit is an ASGI middleware
that counts bytes as they arrive, so a client cannot make the server buffer a
large body by leaving out (or lying in) ``Content-Length``.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 16 * 1024
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})  # their bodies are ignored, never read


def error_response(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape."""
    code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the JSON error handlers and the body-size limit on ``app``."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)  # noqa: S101 registered for this type only
        return error_response(exc.status_code, exc.detail, dict(exc.headers or {}))

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 registered for this type only
        problems = [
            {
                "location": ".".join(str(part) for part in error.get("loc", ())),
                "message": error.get("msg", ""),
            }
            for error in exc.errors()
        ]
        return error_response(422, problems)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)


class BodyLimit:
    """Reject request bodies over ``max_bytes`` with 413 before the app sees them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODILESS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, send)
            return
        body = bytearray()
        more = True
        messages: list[Message] = []
        while more:
            message = await receive()
            if message["type"] != "http.request":
                messages.append(message)
                break
            body.extend(message.get("body", b""))
            if len(body) > self.max_bytes:
                await self._reject(scope, send)
                return
            more = bool(message.get("more_body", False))
        replay: list[Message] = [{"type": "http.request", "body": bytes(body), "more_body": False}]
        replay.extend(messages)

        async def replayed() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        await self.app(scope, replayed, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        detail = f"request bodies are limited to {self.max_bytes} bytes"
        await send_error(send, 413, detail, code="content_too_large", close=True)


async def send_error(
    send: Send, status: int, detail: str, *, code: str | None = None, close: bool = False
) -> None:
    """The one error shape, sent from an ASGI middleware (before any route runs)."""
    code = code or HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    payload = json.dumps({"error": code, "detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
