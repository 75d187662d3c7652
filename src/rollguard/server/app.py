"""The HTTP API of ``rollguard serve``: status, own metrics, operator commands, the page.

Reads are open (they show what rollguard decided and why); the commands that
change a deployment need the bearer token. Every error is JSON. The OpenAPI
spec is at ``/openapi.json``, the interactive docs at ``/docs``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from rollguard.server import control_api, http_errors, status_api
from rollguard.server import schemas as s
from rollguard.server.audit_view import AuditView
from rollguard.server.auth import TokenAuth
from rollguard.server.cache import ShortCache
from rollguard.server.hosts import LOOPBACK_NAMES, AllowedHosts
from rollguard.server.manager import ControllerManager, UnknownDeploymentError
from rollguard.server.telemetry import Telemetry

STATIC = Path(__file__).resolve().parent / "static"
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": s.ErrorBody, "description": "No watched deployment has that name."},
    422: {"model": s.ErrorBody, "description": "Malformed request."},
}


def create_app(
    manager: ControllerManager,
    *,
    telemetry: Telemetry,
    auth: TokenAuth,
    audit: AuditView,
    manage_lifecycle: bool = True,
    cache_seconds: float = 1.0,
    allowed_hosts: frozenset[str] | None = LOOPBACK_NAMES,
) -> FastAPI:
    """The app; with ``manage_lifecycle`` it starts and stops the manager with the server.

    ``allowed_hosts`` are the ``Host`` names it answers (None: any), see
    :mod:`rollguard.server.hosts`.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await manager.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await manager.stop()

    app = FastAPI(
        title="rollguard",
        summary="Watches deployments, decides, rolls back; this API shows why.",
        version="1",
        lifespan=lifespan,
    )
    http_errors.install(app)
    app.add_middleware(AllowedHosts, hosts=allowed_hosts)  # outermost: before anything runs
    cache = ShortCache(cache_seconds)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def state_or_404(name: str) -> Any:
        try:
            return manager.get(name).state
        except UnknownDeploymentError as exc:
            return http_errors.error_response(404, str(exc))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/healthz", response_model=s.Health, tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up and its event loop answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=s.Readiness,
        tags=["health"],
        responses={503: {"model": s.Readiness, "description": "The policies are not loaded yet."}},
    )
    async def readyz() -> Any:
        """Ready once the policy folder was read and every good policy's watch started."""
        body = {
            "ready": manager.ready,
            "deployments": len(manager.runners),
            "policy_errors": len(manager.failures),
        }
        return body if manager.ready else JSONResponse(body, status_code=503)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        tags=["health"],
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def metrics() -> Response:
        """rollguard's own metrics in the Prometheus text format."""
        # Rendering thousands of series takes a while: a thread keeps the loop serving.
        body = await cache.aget("metrics", lambda: asyncio.to_thread(telemetry.render))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/deployments", response_model=s.DeploymentList, tags=["deployments"])
    async def deployments() -> Response:
        """Every watched deployment, and every policy file that failed to load (file:line).

        Cached for up to a second: with a thousand deployments the list is costly to build.
        """
        body = cache.get("deployments", lambda: _json_bytes(_listing(manager)))
        return Response(body, media_type="application/json")

    @app.get(
        "/api/v1/deployments/{name}",
        response_model=s.DeploymentDetail,
        tags=["deployments"],
        responses=_ERRORS,
    )
    async def deployment(name: str) -> Any:
        """Status, traffic weights, signals against limits, last decision, recent timeline."""
        found = state_or_404(name)
        return found if isinstance(found, JSONResponse) else JSONResponse(found.detail())

    @app.get(
        "/api/v1/deployments/{name}/history",
        response_model=s.DeploymentHistory,
        tags=["deployments"],
        responses=_ERRORS,
    )
    async def deployment_history(name: str) -> Any:
        """The last hour of each trigger's value, reference and limit, decisions and traffic
        steps: what the page's charts start from. At most `capacity` rows per trigger."""
        found = state_or_404(name)
        if isinstance(found, JSONResponse):
            return found
        return JSONResponse(found.history.as_dict(now=manager.wall_clock()))

    @app.post("/api/v1/deployments/{name}/history", include_in_schema=False)
    async def history_is_read_only(name: str) -> JSONResponse:
        # Without this, POST would reach the command route below ("history" is no command).
        return http_errors.error_response(405, "Method Not Allowed", {"Allow": "GET"})

    control_api.add_routes(app, manager, auth=auth, telemetry=telemetry, cache=cache)

    @app.get("/api/v1/audit", response_model=s.AuditList, tags=["audit"], responses=_ERRORS)
    async def audit_entries(
        deployment: str | None = None,
        namespace: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Recent audit entries, newest first (from the store when one is configured).

        ``deployment`` matches that name in every namespace; ``namespace`` keeps
        only entries recorded in that Kubernetes namespace.
        """
        entries = await audit.entries(deployment=deployment, namespace=namespace, limit=limit)
        return {"backend": audit.backend, "entries": entries}

    status_api.add_routes(app, manager)
    _security_scheme(app)
    return app


def _listing(manager: ControllerManager) -> dict[str, Any]:
    return {
        "deployments": [runner.state.summary() for runner in manager.runners.values()],
        "policy_errors": [
            failure.as_dict() for failures in manager.failures.values() for failure in failures
        ],
    }


def _json_bytes(content: Any) -> bytes:
    # Built as plain JSON (the schemathesis test holds it to the response model): validating
    # a thousand deployments through the model would dominate the request's cost.
    return json.dumps(content, separators=(",", ":"), allow_nan=False).encode()


def _security_scheme(app: FastAPI) -> None:
    """Declare the bearer scheme in the OpenAPI document the commands refer to."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = original()
            spec.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http",
                "scheme": "bearer",
            }
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
