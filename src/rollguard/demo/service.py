"""The demo service: a small real HTTP app whose health can be broken on purpose.

It exposes what rollguard's scrape provider reads (``/metrics``, from a
private :class:`~prometheus_client.CollectorRegistry`, never the global one)
and test endpoints (``POST /simulate/...``). Only the application
endpoints (``/`` and ``/api/...``) are counted and faulted: scrapes and admin
calls must not dilute the error rate they are meant to reveal.

Run one with ``python -m rollguard.demo.service --version v2 --port 8002``, or
from code with :func:`start` (a child process, so its memory and CPU are its
own) or :func:`rollguard.demo.servers.serve_in_thread` on :func:`create_app`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rollguard.demo import servers
from rollguard.demo.faults import (
    SEVERITIES,
    FaultError,
    Faults,
    parse_number,
    yield_to_the_loop,
)

if TYPE_CHECKING:
    import httpx

#: Latency buckets from 5 ms to 10 s, so p95 is resolvable for a healthy and a slow service.
BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class ServiceMetrics:
    """The service's metrics, on a registry of its own."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "http_requests_total", "Application requests by status code.", ["code"],
            registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Application request duration.",
            buckets=BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.connections = Gauge(
            "http_active_connections", "Application requests in flight.", registry=self.registry
        )
        self.vulnerabilities = Gauge(
            "vulnerabilities", "Vulnerabilities reported by a scanner.", ["severity"],
            registry=self.registry,
        )  # fmt: skip
        for severity in SEVERITIES:
            self.vulnerabilities.labels(severity=severity).set(0)
        self.suspicious = Counter(
            "rollguard_suspicious_requests",
            "Requests matching an attack signature (traversal, script or SQL injection).",
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)


#: Crude attack signatures, enough to make ``suspicious_patterns`` observable.
SUSPICIOUS = re.compile(
    r"\.\./|%2e%2e|<script|%3cscript|union(\s|%20|\+)+select|/etc/passwd|'\s*or\s*'1'\s*=\s*'1",
    re.IGNORECASE,
)


def looks_suspicious(path: str, query: str) -> bool:
    """Whether a request's path or query carries an attack signature."""
    return SUSPICIOUS.search(f"{path}?{query}") is not None


class DemoService:
    """One instance of the demo app: its faults, its metrics and its endpoints."""

    def __init__(self, version: str, *, role: str, router_url: str | None) -> None:
        self.version = version
        self.role = role
        self.router_url = router_url
        self.faults = Faults()
        self.metrics = ServiceMetrics()
        self.blocked_reason: str | None = None
        self.pushed_rollback: dict[str, Any] | None = None
        self._router_client: httpx.AsyncClient | None = None
        #: The memory fault's one thread, below the event loop's priority.
        self._grower = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ballast", initializer=yield_to_the_loop
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        """Open the client that asks the router about rollbacks; free memory on exit."""
        if self.router_url is not None:
            import httpx  # only the status endpoints need it: keeps the child's start light

            self._router_client = httpx.AsyncClient(timeout=2.0)
        try:
            yield
        finally:
            if self._router_client is not None:
                await self._router_client.aclose()
            self.faults.release_memory()  # a growth under way stops at its next MiB
            self._grower.shutdown(wait=False, cancel_futures=True)

    async def serve(self, request: Request) -> Response:
        """The application endpoint: counted, timed and subject to the faults."""
        self.metrics.connections.inc()
        started = time.perf_counter()
        if looks_suspicious(request.url.path, request.url.query):
            self.metrics.suspicious.inc()
        try:
            if self.faults.latency_ms:
                await asyncio.sleep(self.faults.latency_ms / 1000)
            status = self.faults.status_for_next_request(now=time.monotonic())
            body: dict[str, Any] = {"version": self.version}
            if status is None:
                body["path"] = request.url.path
            else:
                body["error"] = "simulated fault"
            response = JSONResponse(body, status_code=status or 200)
        finally:
            self.metrics.duration.observe(time.perf_counter() - started)
            self.metrics.connections.dec()
        self.metrics.requests.labels(code=str(response.status_code)).inc()
        return response

    async def healthz(self, _: Request) -> Response:
        return JSONResponse({"ok": True, "version": self.version})

    async def metrics_page(self, _: Request) -> Response:
        body = generate_latest(self.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def simulate(self, request: Request) -> Response:
        """``POST /simulate/{fault}/{value}`` and ``POST /simulate/reset``."""
        fault = request.path_params.get("fault", "reset")
        raw = str(request.path_params.get("value", ""))
        try:
            await self._apply(fault, raw)
        except FaultError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse({"version": self.version, "faults": self.faults.active()})

    async def _apply(self, fault: str, raw: str) -> None:
        faults = self.faults
        if fault == "error_rate":
            faults.error_rate_percent = parse_number(raw, what="percent", low=0, high=100)
        elif fault == "latency":
            faults.latency_ms = parse_number(raw, what="ms", low=0, high=60_000)
        elif fault == "memory":
            megabytes = int(parse_number(raw, what="mb", low=0, high=4096))
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._grower, faults.grow_memory, megabytes)
        elif fault == "unauthorized":
            per_minute = parse_number(raw, what="per_minute", low=0, high=60_000)
            faults.set_unauthorized(per_minute, now=time.monotonic())
        elif fault == "vulnerability":
            severity = raw.lower()
            count = faults.add_vulnerability(severity)
            self.metrics.vulnerabilities.labels(severity=severity).set(count)
            self.blocked_reason = f"{count} {severity} vulnerabilities reported"
        elif fault == "reset":
            faults.reset()
            self.blocked_reason = None
            for severity in SEVERITIES:
                self.metrics.vulnerabilities.labels(severity=severity).set(0)
        else:
            raise FaultError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")

    async def rollback_status(self, request: Request) -> Response:
        """``GET`` what is known of a rollback; ``PUT {"rolled_back": bool}`` to push it."""
        if request.method == "PUT":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("rolled_back"), bool):
                return JSONResponse({"error": 'expected {"rolled_back": true|false}'}, 422)
            self.pushed_rollback = body
        view = await self._rollback_view()
        faults = self.faults.active()
        return JSONResponse({"version": self.version, "role": self.role, "faults": faults, **view})

    async def deployment_status(self, _: Request) -> Response:
        """Version, status (``blocked`` after a vulnerability), faults and rollback state."""
        return JSONResponse(
            {
                "version": self.version,
                "role": self.role,
                "status": "blocked" if self.blocked_reason else "active",
                "blocked_reason": self.blocked_reason,
                "faults": self.faults.active(),
                **await self._rollback_view(),
            }
        )

    async def _rollback_view(self) -> dict[str, Any]:
        """What this instance knows of a rollback: asked of the router, else as pushed."""
        if self.router_url is not None and self._router_client is not None:
            import httpx

            try:
                answer = await self._router_client.get(f"{self.router_url}/-/router")
                router = answer.raise_for_status().json()
            except (httpx.HTTPError, ValueError) as exc:
                return {"rolled_back": None, "source": "router", "error": str(exc)}
            return {
                "rolled_back": router["canary_percent"] == 0,
                "canary_percent": router["canary_percent"],
                "canary_state": router["canary_state"],
                "source": "router",
            }
        if self.pushed_rollback is not None:
            return {**self.pushed_rollback, "source": "pushed"}
        return {"rolled_back": None, "source": None}


FAULTS = ("error_rate", "latency", "memory", "unauthorized", "vulnerability")


def create_app(version: str, *, role: str = "canary", router_url: str | None = None) -> Starlette:
    """The demo app for one version; ``router_url`` lets its status report rollbacks."""
    demo = DemoService(version, role=role, router_url=router_url)
    routes = [
        Route("/", demo.serve, methods=["GET"]),
        Route("/api/{rest:path}", demo.serve, methods=["GET", "POST"]),
        Route("/metrics", demo.metrics_page, methods=["GET"]),
        Route("/healthz", demo.healthz, methods=["GET"]),
        Route("/simulate/reset", demo.simulate, methods=["POST"]),
        Route("/simulate/{fault}/{value}", demo.simulate, methods=["POST"]),
        Route("/rollback/status", demo.rollback_status, methods=["GET", "PUT"]),
        Route("/deployment/status", demo.deployment_status, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=demo.lifespan)
    app.state.service = demo
    return app


def start(
    version: str,
    *,
    role: str = "canary",
    router_url: str | None = None,
    group: servers.ProcessGroup | None = None,
) -> servers.ProcessServer:
    """Run one version as a child process and return once it accepts connections.

    With ``group`` the child is stopped with the group, even while it starts.
    """
    args = ["--version", version, "--role", role]
    if router_url is not None:
        args += ["--router", router_url]
    return servers.spawn("rollguard.demo.service", args, group=group)


def main(argv: list[str] | None = None) -> None:
    """``python -m rollguard.demo.service``: serve one version until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", required=True, help="version name it answers with")
    parser.add_argument("--role", default="canary", choices=["stable", "canary"])
    parser.add_argument("--router", default=None, help="router URL, for /rollback/status")
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args(argv)
    app = create_app(options.version, role=options.role, router_url=options.router)
    servers.run_child(app, port=options.port)


if __name__ == "__main__":
    main()
