"""A gate's verdict goes where every decision goes: the audit trail and, when it
blocks, the people on the ``security_alert`` route."""

from __future__ import annotations

import uuid

from rollguard.audit.base import AuditRecord, AuditSink
from rollguard.controller.recovery import namespace_of
from rollguard.controller.watch import NOTIFY_DEADLINE_SECONDS
from rollguard.notifiers.base import Delivery, Notification, Notifier, notify_within
from rollguard.policy.model import Policy
from rollguard.scanners.gate import GateResult
from rollguard.timestamps import now_rfc3339


def record_gate(policy: Policy, result: GateResult, *, audit: AuditSink) -> int:
    """Append one ``gate`` entry (passed or blocked) and return its id."""
    decision = result.decision()
    return audit.append(
        AuditRecord(
            kind="gate",
            deployment=policy.target.deployment,
            timestamp=now_rfc3339(),
            trigger=decision.trigger,
            reason=decision.reason,
            severity=decision.severity.value,
            action=decision.action.value,
            outcome="passed" if result.passed else "blocked",
            policy_digest=policy.digest(),
            evidence={
                "counts": dict(result.counts),
                "checks": [check.as_dict() for check in result.checks],
                "blocking": [finding.as_dict() for finding in result.blocking],
            },
            watch_id=uuid.uuid4().hex,
            namespace=namespace_of(policy) or "",
        )
    )


async def notify_gate(policy: Policy, result: GateResult, *, notifier: Notifier) -> list[Delivery]:
    """Tell the gate's route that a deployment was blocked; nothing when it passed."""
    decision = result.decision()
    if result.passed or decision.notification is None:
        return []
    note = Notification(
        route=decision.notification,
        deployment=policy.target.deployment,
        title=f"rollguard: deployment of {policy.target.deployment} blocked",
        text=decision.reason,
        severity=decision.severity.value,
        fields={"trigger": decision.trigger, "action": decision.action.value},
    )
    return await notify_within(notifier, note, seconds=NOTIFY_DEADLINE_SECONDS)
