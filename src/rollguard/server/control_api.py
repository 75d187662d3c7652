"""The control endpoints of ``serve``'s API: operator commands and new releases.

Both need ``Authorization: Bearer`` (:mod:`rollguard.server.auth`); the token
is checked before anything else of the request, and its name is who asked,
in the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Request

from rollguard.server import http_errors
from rollguard.server import schemas as s
from rollguard.server.auth import TokenAuth
from rollguard.server.cache import ShortCache
from rollguard.server.manager import CommandRefusedError, ControllerManager, UnknownDeploymentError
from rollguard.server.telemetry import Telemetry

#: ``rollguard_api_unauthorized_total{command}`` labels: the commands, and releases.
_LABELS = frozenset(command.value for command in s.Command) | {"releases"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": s.ErrorBody, "description": "The body is not valid JSON."},
    401: {"model": s.ErrorBody, "description": "Missing or wrong bearer token (counted)."},
    404: {"model": s.ErrorBody, "description": "No watched deployment has that name."},
    409: {"model": s.ErrorBody, "description": "The command does not apply in this status."},
    413: {"model": s.ErrorBody, "description": "Request body too large."},
    422: {"model": s.ErrorBody, "description": "Malformed request."},
}


def add_routes(
    app: FastAPI,
    manager: ControllerManager,
    *,
    auth: TokenAuth,
    telemetry: Telemetry,
    cache: ShortCache,
) -> None:
    """``POST /api/v1/deployments/{name}/releases`` and ``.../{command}``."""
    guard = Depends(_token_guard(auth, telemetry))

    @app.post(
        "/api/v1/deployments/{name}/releases",
        status_code=201,
        response_model=s.ReleaseResult,
        tags=["deployments"],
        responses=_ERRORS,
        openapi_extra={"security": [{"bearer": []}]},
        dependencies=[guard],
    )
    async def release(request: Request, name: str, body: Annotated[s.ReleaseBody, Body()]) -> Any:
        """A new release began (from CI, with its version): watch it from the start.

        The current watch ends as superseded and the engine forgets the previous
        release; after a rollback this is what starts watching again. Audited (kind
        ``release``) with the version, the reason and the token's name.
        """
        try:
            state = await manager.release(
                name,
                version=body.version,
                reason=body.reason,
                requested_by=request.state.requested_by,
            )
        except UnknownDeploymentError as exc:
            return http_errors.error_response(404, str(exc))
        except CommandRefusedError as exc:
            return http_errors.error_response(409, str(exc))
        cache.clear()
        return {"deployment": name, "version": body.version, "status": state.status.value}

    @app.post(
        "/api/v1/deployments/{name}/{command}",
        response_model=s.CommandResult,
        tags=["deployments"],
        responses=_ERRORS,
        openapi_extra={"security": [{"bearer": []}]},
        dependencies=[guard],
    )
    async def command(
        request: Request,
        name: str,
        command: s.Command,
        body: Annotated[s.CommandBody | None, Body()] = None,
    ) -> Any:
        """Abort (roll back now), pause, resume, promote or retry; needs ``Authorization: Bearer``.

        On a progressive release (``promotion:``) pause holds the current step while
        the rollback triggers still act, and promote passes its ``confirm_promotion``
        hook (a hook that holds it answers 409). Retry watches the release again from
        its first step after an abort, a rollback or a failure. Audited with the
        reason, the name of the token that asked and whom the client named."""
        try:
            state = await manager.command(
                name,
                command.value,
                reason=body.reason if body else "",
                requested_by=request.state.requested_by,
                on_behalf_of=body.on_behalf_of if body else "",
            )
        except UnknownDeploymentError as exc:
            return http_errors.error_response(404, str(exc))
        except CommandRefusedError as exc:
            return http_errors.error_response(409, str(exc))
        cache.clear()
        return {"deployment": name, "command": command.value, "status": state.status.value}


def _token_guard(auth: TokenAuth, telemetry: Telemetry) -> Callable[..., None]:
    """A dependency refusing (401) and counting a command without the bearer token.

    Dependencies run before FastAPI validates the path and the body's fields, so an
    unauthenticated client gets 401, counted, rather than a 422 describing the API.
    """

    def require_token(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> None:
        name = auth.identify(authorization)
        if name is not None:
            request.state.requested_by = name  # who asked, for the audit trail
            return
        raw = str(request.path_params.get("command", ""))
        if request.url.path.endswith("/releases"):
            raw = "releases"
        telemetry.unauthorized.labels(raw if raw in _LABELS else "unknown").inc()
        why = (
            "a valid bearer token is required"
            if auth.configured
            else "no API token is configured on the server (ROLLGUARD_API_TOKEN or --token-file)"
        )
        raise HTTPException(401, why, headers={"WWW-Authenticate": "Bearer"})

    return require_token
