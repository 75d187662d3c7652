"""Writing the audit entries of whole watches, as the controller does, with known timings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rollguard.audit.base import AuditRecord, AuditSink


def _iso(moment: datetime) -> str:
    if moment.microsecond:  # sub-second timings (a narrow spread of recovery times)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def record_watch(
    store: AuditSink,
    *,
    watch_id: str,
    start: datetime,
    deployment: str = "checkout",
    detect_after: float | None = None,
    recover_after: float = 0.0,
    action: str = "immediate_rollback",
    trigger: str = "error_rate_trigger",
    severity: str = "critical",
    outcome: str = "success",
    affected_users: int = 0,
    ended: bool = True,
    evidence: dict[str, object] | None = None,
) -> None:
    """A healthy watch (``detect_after`` None) or one that decided and acted."""

    def add(kind: str, at: datetime, **values: object) -> None:
        store.append(
            AuditRecord(
                kind=kind,
                deployment=deployment,
                timestamp=_iso(at),
                watch_id=watch_id,
                policy_digest="cd" * 32,
                **values,  # type: ignore[arg-type]
            )
        )

    add("deployment_start", start)
    if detect_after is None:
        if ended:
            add("deployment_end", start + timedelta(minutes=10), outcome="healthy")
        return
    decided = start + timedelta(seconds=detect_after)
    act = {"trigger": trigger, "severity": severity, "action": action}
    why = {"evidence": [{"trigger": trigger, **evidence}]} if evidence else {}
    add("decision", decided, **act, reason=f"{trigger} fired", evidence=why)
    add("action_intent", decided, **act, outcome="started")
    done = decided + timedelta(seconds=recover_after)
    add(
        "action_result",
        done,
        **act,
        outcome=outcome,
        duration_seconds=recover_after,
        affected_users=affected_users,
        metrics={"errorRate": 9.0, "latency": 250.0, "memoryUsage": 300.0},
    )
    if ended:
        add("deployment_end", done, outcome="rolled_back" if outcome == "success" else "failed")


def day(n: int) -> datetime:
    """Noon on the n-th day of November 2026, UTC."""
    return datetime(2026, 11, n, 12, 0, tzinfo=UTC)


def hook_calls(records: list[AuditRecord]) -> list[tuple[str, str, str]]:
    """(hook, outcome, what its command printed) for each release hook call in the trail."""
    return [
        (r.executor_output["hook"], r.outcome, str(r.executor_output.get("stdout", "")).strip())
        for r in records
        if r.kind == "hook"
    ]
