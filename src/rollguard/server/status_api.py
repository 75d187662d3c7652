"""Two short status endpoints for shell scripts: ``curl`` and one field to test.

``GET /rollback/status`` (was anything rolled back, and why) and
``GET /deployment/status`` (each deployment's status, blocked or not) are
summaries of the richer ``/api/v1/deployments`` views.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from rollguard.server import schemas as s
from rollguard.server.manager import ControllerManager
from rollguard.server.state import Status, iso


def add_routes(app: FastAPI, manager: ControllerManager) -> None:
    """Register the two status endpoints on ``app``."""

    @app.get("/rollback/status", response_model=s.RollbackStatus, tags=["status"])
    async def rollback_status() -> dict[str, Any]:
        """Which deployments were rolled back, and why."""
        rows = []
        for runner in manager.runners.values():
            state = runner.state
            outcome = state.outcome or {}
            if state.status is Status.ABORTED:  # an operator's abort has no watch outcome
                outcome = {
                    "action": "abort",
                    "trigger": "operator",
                    "reason": "aborted by operator",
                    "decided_at": iso(state.updated_at) if state.updated_at else None,
                }
            rolled = state.status in {Status.ROLLED_BACK, Status.ABORTED}
            rows.append(
                {
                    "name": state.name,
                    "status": state.status.value,
                    "rolled_back": rolled,
                    "action": outcome.get("action") if rolled else None,
                    "trigger": outcome.get("trigger") if rolled else None,
                    "reason": outcome.get("reason") if rolled else None,
                    "at": outcome.get("decided_at") if rolled else None,
                }
            )
        return {"rolled_back": any(row["rolled_back"] for row in rows), "deployments": rows}

    @app.get("/deployment/status", response_model=s.DeploymentStatus, tags=["status"])
    async def deployment_status() -> dict[str, Any]:
        """Each deployment's status, blocked or not."""
        return {
            "deployments": [
                {
                    "name": runner.state.name,
                    "status": runner.state.status.value,
                    "blocked": runner.state.status is Status.BLOCKED,
                    "canary_weight": runner.state.canary_weight,
                }
                for runner in manager.runners.values()
            ]
        }
