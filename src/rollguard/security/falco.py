"""Falco alerts: parse Falco's JSON output and receive it over HTTP on loopback.

Falco posts one JSON object per alert when ``json_output: true`` and
``http_output: {enabled: true, url: http://127.0.0.1:PORT/}``; Falcosidekick's
webhook output posts the same fields. Each alert has ``priority`` (Emergency,
Alert, Critical, Error, Warning, Notice, Informational, Debug), ``rule``,
``output``, ``time`` and ``output_fields``. Alerts below the policy's
``falco_min_priority`` are ignored (counted, never events). Bodies with one
alert per line (Falco's file output) are accepted too.

The receiver is a stdlib HTTP server in a daemon thread: no framework for one
POST route, and it binds 127.0.0.1 only unless told otherwise.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rollguard import documents
from rollguard.errors import InputError, ProviderError
from rollguard.policy.triggers import FALCO_PRIORITIES, falco_priority
from rollguard.security.events import EventLog, SecurityEvent

MAX_BODY_BYTES = 1024 * 1024


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


class FalcoReceiver:
    """An HTTP endpoint for Falco's ``http_output``; ``start()`` then ``stop()``."""

    def __init__(
        self,
        intake: FalcoIntake,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.intake = intake
        self._clock = clock
        try:
            self._server = ThreadingHTTPServer((host, port), self._handler())
        except OSError as exc:
            raise ProviderError(
                f"runtime_security.falco_listen {host}:{port}: cannot listen: {exc.strerror or exc}"
            ) from exc
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound (port 0 picks a free one)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Serve in a daemon thread until ``stop()``."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port; safe when ``start()`` was never called."""
        if self._thread is not None:
            # shutdown() waits for serve_forever to end: it would hang if it never began.
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0:  # read(-1) would wait for the client to close
                    self._answer(400, {"error": "expected a Content-Length in bytes"})
                    return
                if length > MAX_BODY_BYTES:
                    self._answer(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
                    return
                body = self.rfile.read(length).decode("utf-8", errors="replace")
                try:
                    alerts = parse_alerts(body, where="request body")
                except InputError as exc:
                    self._answer(400, {"error": str(exc)})
                    return
                recorded = receiver.intake.take(alerts, now=receiver._clock())
                self._answer(200, {"received": len(alerts), "recorded": recorded})

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the watch output is the place for news, not stderr."""

        return Handler
