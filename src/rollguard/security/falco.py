"""Falco alerts: parse Falco's JSON output and receive it over HTTP on loopback.

Falco posts one JSON object per alert when ``json_output: true`` and
``http_output: {enabled: true, url: http://127.0.0.1:PORT/}``; Falcosidekick's
webhook output posts the same fields. Each alert has ``priority`` (Emergency,
Alert, Critical, Error, Warning, Notice, Informational, Debug), ``rule``,
``output``, ``time`` and ``output_fields``. Alerts below the policy's
``falco_min_priority`` are ignored (counted, never events). Bodies with one
alert per line (Falco's file output) are accepted too.

The receiver is one raw ASGI route on uvicorn, in a thread with its own event
loop, behind the same guarded listener as ``serve`` (request deadlines, a
connection cap); it binds 127.0.0.1 unless told otherwise and requires a
shared secret on every post (:class:`FalcoReceiver`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from rollguard import documents
from rollguard.errors import InputError, ProviderError
from rollguard.policy.triggers import FALCO_PRIORITIES, falco_priority
from rollguard.security.events import EventLog, SecurityEvent
from rollguard.security.listener import Limits, bind, make_server

MAX_BODY_BYTES = 1024 * 1024
MIN_SECRET_LENGTH = 16
#: Falco posts one small alert per request: short deadlines, few connections.
RECEIVER_LIMITS = Limits(header_seconds=5.0, body_seconds=5.0, max_connections=64)


def priority_rank(name: str) -> int:
    """0 for emergency … 7 for debug; InputError for a word Falco does not use."""
    try:
        return FALCO_PRIORITIES.index(falco_priority(name))
    except ValueError:
        raise InputError(
            f"unknown Falco priority {name!r}; expected one of {', '.join(FALCO_PRIORITIES)}"
        ) from None


@dataclass(frozen=True)
class FalcoAlert:
    """The fields of one alert rollguard uses."""

    rule: str
    priority: str
    output: str
    hostname: str
    source: str


def parse_alerts(body: str, *, where: str = "<falco>") -> list[FalcoAlert]:
    """One alert per JSON object: a single object, or one per line; InputError names the line."""
    text = body.strip()
    if not text:
        raise InputError(f"{where}: empty body: expected a Falco JSON alert")
    lines = [text] if text.startswith("{") and "\n" not in text else text.splitlines()
    alerts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item: Any = documents.load_json(line, source=where, what="alert")
        except documents.DocumentError as exc:
            raise InputError(f"{where}:{number}: {exc.reason}") from None
        if not isinstance(item, dict) or "priority" not in item or "rule" not in item:
            raise InputError(
                f"{where}:{number}: not a Falco alert: expected an object with "
                "'priority', 'rule' and 'output' (json_output: true)"
            )
        priority = str(item["priority"])
        priority_rank(priority)
        alerts.append(
            FalcoAlert(
                rule=str(item["rule"]),
                priority=priority,
                output=str(item.get("output", "")),
                hostname=str(item.get("hostname", "")),
                source=str(item.get("source", "")),
            )
        )
    return alerts


class FalcoIntake:
    """Turns alerts at or above ``min_priority`` into events; counts the ones below."""

    def __init__(self, events: EventLog, *, min_priority: str = "warning") -> None:
        self.events = events
        self.min_rank = priority_rank(min_priority)
        self.accepted = 0
        self.ignored = 0

    def take(self, alerts: list[FalcoAlert], *, now: float) -> int:
        """Record the alerts that matter; return how many were recorded."""
        recorded = 0
        for alert in alerts:
            if priority_rank(alert.priority) > self.min_rank:
                self.ignored += 1
                continue
            detail = f"{alert.rule} ({alert.priority}): {alert.output[:200]}"
            self.events.add(SecurityEvent(now, "falco", "falco", detail, alert.hostname))
            recorded += 1
        self.accepted += recorded
        return recorded


def falco_secret(env_name: str | None, *, environ: Mapping[str, str] | None = None) -> str:
    """The shared secret from the variable ``falco_secret_env`` names; ProviderError if unset."""
    env = os.environ if environ is None else environ
    secret = env.get(env_name or "", "").strip()
    if not env_name or not secret:
        raise ProviderError(
            f"runtime_security.falco_secret_env: ${env_name or '(unset)'} holds no secret; "
            "set it to the secret Falco sends (e.g. `openssl rand -hex 32`)"
        )
    return secret


class FalcoReceiver:
    """An HTTP endpoint for Falco's ``http_output``; ``start()`` then ``stop()``.

    Every post must carry the shared ``secret``: as ``Authorization: Bearer SECRET``
    (Falcosidekick's ``webhook.customheaders``) or as the password of HTTP Basic
    auth (Falco's ``http_output.url: http://falco:SECRET@127.0.0.1:2801/``, which
    libcurl sends as ``Authorization: Basic``). Without it a post is refused (401):
    any local process could otherwise forge a Critical alert and have the release
    isolated. The listener has the same limits as ``serve``'s
    (:mod:`rollguard.security.listener`): slow or idle clients are closed at a
    deadline and cannot hold a thread or a descriptor each.
    """

    def __init__(
        self,
        intake: FalcoIntake,
        *,
        secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        limits: Limits = RECEIVER_LIMITS,
    ) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ProviderError(
                f"runtime_security.falco_secret_env: the secret must be at least "
                f"{MIN_SECRET_LENGTH} characters (e.g. `openssl rand -hex 32`)"
            )
        self.intake = intake
        self._clock = clock
        self._secret = secret.encode()
        self._limits = limits
        try:
            self._socket = bind(host, port)
        except OSError as exc:
            raise ProviderError(
                f"runtime_security.falco_listen {host}:{port}: cannot listen: {exc.strerror or exc}"
            ) from exc
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound (port 0 picks a free one)."""
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Serve on a thread of its own (its own event loop) until ``stop()``.

        The socket listens from the constructor on, so a post sent before the
        thread is up waits in the backlog instead of being refused.
        """
        server = make_server(
            self._app, limits=self._limits, lifespan="off", configure_logging=False
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, daemon=True, name="falco"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port; safe when ``start()`` was never called."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None
        self._socket.close()

    def authorized(self, header: bytes | None) -> bool:
        """The request carries the secret (Bearer, or Basic auth's password); constant-time."""
        if not header:
            return False
        scheme, _, value = header.partition(b" ")
        scheme = scheme.lower()
        if scheme == b"basic":
            try:
                value = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
        elif scheme != b"bearer":
            return False
        return hmac.compare_digest(value.strip(), self._secret)

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope.get("headers", []))
        if scope["method"] != "POST":
            await _answer(send, 405, {"error": "only POST (Falco's http_output) is accepted"})
            return
        if not self.authorized(headers.get(b"authorization")):
            await _answer(
                send,
                401,
                {"error": "the shared secret is required (runtime_security.falco_secret_env)"},
                extra=[(b"www-authenticate", b'Basic realm="rollguard-falco"')],
            )
            return
        body = await _read_body(headers.get(b"content-length"), receive)
        if isinstance(body, int):
            if body:
                message = (
                    f"body over {MAX_BODY_BYTES} bytes"
                    if body == 413
                    else "expected a Content-Length in bytes"
                )
                await _answer(send, body, {"error": message})
            return
        try:
            alerts = parse_alerts(body.decode("utf-8", errors="replace"), where="request body")
        except InputError as exc:
            await _answer(send, 400, {"error": str(exc)})
            return
        recorded = self.intake.take(alerts, now=self._clock())
        await _answer(send, 200, {"received": len(alerts), "recorded": recorded})


async def _read_body(declared: bytes | None, receive: Receive) -> bytes | int:
    """The whole body, or 400/413 to answer, or 0 when the client went away."""
    if declared is not None and not declared.isdigit():
        return 400  # a negative or garbled length
    if declared is not None and int(declared) > MAX_BODY_BYTES:
        return 413
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return 0  # disconnected (or closed at the body deadline): nothing to answer
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            return 413
        if not message.get("more_body", False):
            return bytes(body)


async def _answer(
    send: Send,
    status: int,
    payload: dict[str, object],
    *,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
