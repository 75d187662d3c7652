"""The audit entries ``serve`` writes itself: operator commands and new releases.

Each says who asked (the API token's name, with whom the client named when it
did, or the executor that read a new revision), why, and what the deployment's
status was, refused requests too, so the trail alone tells who paused automatic
rollback and when.
"""

from __future__ import annotations

from typing import Literal

from rollguard.audit.base import AuditRecord, Kind
from rollguard.controller.watch import asker
from rollguard.server.state import DeploymentState, iso


def entry(
    kind: Kind,
    state: DeploymentState,
    *,
    what: str,
    requested_by: str,
    reason: str,
    on_behalf_of: str = "",
    at: float,
    watch_id: str,
    action: str = "continue",
    refused: str = "",
    facts: dict[str, object] | None = None,
) -> AuditRecord:
    """A ``command`` or ``release`` entry: ``what`` (``pause``, ``release v2``) and by whom."""
    note = f": {reason}" if reason else ""
    outcome: Literal["accepted", "refused"] = "refused" if refused else "accepted"
    return AuditRecord(
        kind=kind,
        deployment=state.name,
        namespace=state.namespace,
        timestamp=iso(at),
        trigger="operator",
        reason=f"{what} by {asker(requested_by, on_behalf_of)}{note}"
        + (f" (refused: {refused})" if refused else ""),
        action=action,
        outcome=outcome,
        policy_digest=state.policy_digest,
        evidence={
            **(facts or {}),
            "requested_by": requested_by,
            "reason": reason,
            "status": state.status.value,
        },
        watch_id=watch_id,
    )
