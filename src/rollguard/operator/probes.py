"""``rollguard controller``'s probes and metrics: ``/healthz``, ``/readyz``, ``/metrics``.

The listener runs on a thread with its own event loop, so it answers while the
controller's loop is busy (or stuck) and judges that loop by the marks it
leaves, never by the fact that it can answer at all:

- ``/healthz`` (liveness): the reconcile loop came round (a resync attempted,
  whatever its result) within ``stall_seconds``. A loop stuck in a call that
  never returns fails it, and the kubelet restarts the pod; an API server that
  is away does not (restarting would not bring it back).
- ``/readyz`` (readiness): the last resync succeeded within ``stall_seconds``
  (connected to the API server), the audit store answers a read now, and the
  shard Leases were renewed within a Lease duration (this replica holds its
  shards, or stands by while balancing). The body names what failed.
- ``/metrics``: :class:`~rollguard.operator.telemetry.ControllerMetrics`.

The listener has the limits of every rollguard listener
(:mod:`rollguard.security.listener`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import Receive, Scope, Send

from rollguard.audit.base import AuditStore
from rollguard.errors import RollguardError, UsageError
from rollguard.security.listener import Limits, bind, make_server

logger = logging.getLogger("rollguard.controller")

LIMITS = Limits(header_seconds=5.0, body_seconds=5.0, max_connections=64)
#: How long the audit store may take to answer ``/readyz``'s read.
AUDIT_TIMEOUT_SECONDS = 3.0


def parse_address(text: str, *, field: str = "--health-address") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6; port 0 picks a free one), else bad input."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"{field} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::]:8080")
    return host, int(port)


@dataclass
class Marks:
    """When the controller's loops last came round, on the monotonic clock."""

    stall_seconds: float
    lease_seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    resync_tried: float | None = None
    resync_ok: float | None = None
    resync_error: str = ""
    leases_ok: float | None = None
    leases_error: str = ""

    def __post_init__(self) -> None:
        self.started = self.clock()

    def resynced(self, error: str = "") -> None:
        now = self.clock()
        self.resync_tried, self.resync_error = now, error
        if not error:
            self.resync_ok = now

    def ticked(self, error: str = "") -> None:
        self.leases_error = error
        if not error:
            self.leases_ok = self.clock()

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        now = self.clock()
        last = self.resync_tried if self.resync_tried is not None else self.started
        ago = now - last
        alive = ago <= self.stall_seconds
        body: dict[str, Any] = {"alive": alive, "loop_seconds_ago": round(ago, 3)}
        if not alive:
            body["reason"] = (
                f"the reconcile loop has not come round for {ago:.0f}s "
                f"(more than {self.stall_seconds:g}s)"
            )
        return alive, body

    def readiness(self) -> dict[str, Any]:
        """The API server's and the shard Leases' parts of ``/readyz``."""
        now = self.clock()
        api_ok = self.resync_ok is not None and now - self.resync_ok <= self.stall_seconds
        leases_ok = self.leases_ok is not None and now - self.leases_ok <= self.lease_seconds
        return {
            "api": _part(api_ok, self.resync_error or "no resync has succeeded yet"),
            "leases": _part(leases_ok, self.leases_error or "no Lease renewal has succeeded yet"),
        }


def _part(ok: bool, problem: str) -> dict[str, Any]:
    return {"ok": True} if ok else {"ok": False, "problem": problem}


@dataclass
class Probes:
    """What the three paths read: the loops' marks, the audit store, the metrics."""

    marks: Marks
    audit: object
    registry: CollectorRegistry
    shards_held: Callable[[], list[int]]

    def audit_part(self) -> dict[str, Any]:
        if not isinstance(self.audit, AuditStore):
            return {"ok": True, "checked": False}
        try:
            self.audit.list(newest=1, details=False)
        except (RollguardError, OSError) as exc:
            return {"ok": False, "problem": f"the audit store did not answer a read: {exc}"}
        return {"ok": True}

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        parts = self.marks.readiness()
        try:
            parts["audit"] = await asyncio.wait_for(
                asyncio.to_thread(self.audit_part), AUDIT_TIMEOUT_SECONDS
            )
        except TimeoutError:
            parts["audit"] = {
                "ok": False,
                "problem": f"the audit store did not answer within {AUDIT_TIMEOUT_SECONDS:g}s",
            }
        ready = all(part["ok"] for part in parts.values())
        return ready, {"ready": ready, **parts, "shards_held": self.shards_held()}

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method not in ("GET", "HEAD"):
            await _send(send, 405, b'{"error": "only GET"}', "application/json")
        elif path == "/healthz":
            ok, body = self.marks.liveness()
            await _send_json(send, 200 if ok else 503, body)
        elif path == "/readyz":
            ok, body = await self.readiness()
            await _send_json(send, 200 if ok else 503, body)
        elif path == "/metrics":
            text = await asyncio.to_thread(generate_latest, self.registry)
            await _send(send, 200, text, CONTENT_TYPE_LATEST)
        else:
            await _send(send, 404, b'{"error": "not found"}', "application/json")


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    await _send(send, status, json.dumps(body).encode(), "application/json")


async def _send(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ProbeListener:
    """``Probes`` served on ``host:port`` from a thread; the socket is bound at once."""

    def __init__(self, probes: Probes, *, host: str, port: int) -> None:
        try:
            self._socket = bind(host, port)
        except OSError as exc:
            raise UsageError(
                f"--health-address {host}:{port}: cannot listen there: {exc.strerror or exc}"
            ) from None
        self._server: uvicorn.Server = make_server(
            probes.app, limits=LIMITS, lifespan="off", configure_logging=False
        )
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name="probes",
        )
        self._thread.start()
        logger.info("health and metrics on http://%s (/healthz /readyz /metrics)", self.address)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._thread = None
        self._socket.close()
