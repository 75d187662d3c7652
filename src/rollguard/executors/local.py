"""The ``local`` executor: drives the demo's router over its admin HTTP API.

Policy: ``target.executor: {type: local, router: http://127.0.0.1:8080}``.
Every call is idempotent because the router's admin calls set a state rather
than change it by a delta (rolling back twice retires the canary once). A
router that cannot be reached is an ``ok=False`` result naming its URL, so the
failure is recorded; :meth:`LocalExecutor.status` raises
:class:`~rollguard.errors.ExecutorError` instead, since an unknown state must
never read as "rolled back".
"""

from __future__ import annotations

from typing import Any

import httpx

from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, TargetStatus, refused_weight


class LocalExecutor:
    """Acts on one local router; ``client`` is injectable (and then owned by the caller)."""

    def __init__(
        self,
        router: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_seconds: float = 5.0,
    ) -> None:
        url = httpx.URL(router)
        if url.scheme not in ("http", "https") or not url.host:
            raise ExecutorError(f"local executor: router must be an http(s) URL, got {router!r}")
        self.router = router.rstrip("/")
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout_seconds)

    async def rollback(self) -> ActionResult:
        return await self._act("POST", "rollback", "canary retired, all traffic on stable")

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        if (refused := refused_weight(percent)) is not None:
            return refused
        return await self._act(
            "PUT", "weight", f"canary weight set to {percent}%", {"canary_percent": percent}
        )

    async def scale(self, *, factor: float) -> ActionResult:
        return await self._act("POST", "scale", f"stable scaled x{factor:g}", {"factor": factor})

    async def isolate(self) -> ActionResult:
        return await self._act("POST", "isolate", "canary isolated, all traffic on stable")

    async def status(self) -> TargetStatus:
        try:
            answer = await self._client.get(f"{self.router}/-/router")
            answer.raise_for_status()
            body = answer.json()
            return TargetStatus(
                canary_weight=int(body["canary_percent"]),
                canary_state=str(body["canary_state"]),
                detail={
                    "router": self.router,
                    "stable_scale": body.get("stable_scale"),
                    "requests": body.get("requests", {}),
                },
            )
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise ExecutorError(
                f"local executor: cannot read the router's state at {self.router}: {_why(exc)}"
            ) from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _act(
        self, method: str, path: str, done: str, body: dict[str, Any] | None = None
    ) -> ActionResult:
        """One admin call; any failure becomes an ``ok=False`` result naming the router."""
        url = f"{self.router}/-/router/{path}"
        try:
            answer = await self._client.request(method, url, json=body)
        except httpx.HTTPError as exc:
            return ActionResult(ok=False, detail=f"router {self.router} unreachable: {_why(exc)}")
        if answer.status_code >= 400:
            return ActionResult(
                ok=False,
                detail=f"router {self.router} refused {method} {path}: "
                f"HTTP {answer.status_code} {answer.text[:200]}",
            )
        try:
            change = answer.json()
            before, after = change["previous"], change["current"]
        except (ValueError, KeyError, TypeError):
            return ActionResult(ok=False, detail=f"router {self.router} answered {path} oddly")
        return ActionResult(
            ok=True,
            detail=f"{done} (canary {before['canary_percent']}% {before['canary_state']} "
            f"-> {after['canary_percent']}% {after['canary_state']})",
            output={"router": self.router, "previous": before, "current": after},
        )


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
