"""Helpers for audit tests: raw SQL as an attacker would run it, realistic records."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import create_engine, text

from rollguard.audit.base import AuditRecord
from rollguard.audit.sql import SqlAuditStore

StoreFactory = Callable[[], SqlAuditStore]


def raw_sql(url: str, *statements: str) -> None:
    """Run statements outside rollguard, as an attacker with database access would."""
    url = url.replace("sqlite:///", "sqlite+pysqlite:///")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def drop_triggers(url: str) -> None:
    """Remove the append-only triggers, the first step of any tampering."""
    if url.startswith("sqlite"):
        raw_sql(
            url,
            "DROP TRIGGER audit_entries_no_update",
            "DROP TRIGGER audit_entries_no_delete",
        )
    else:
        raw_sql(
            url,
            "DROP TRIGGER audit_entries_no_update ON audit_entries",
            "DROP TRIGGER audit_entries_no_delete ON audit_entries",
        )


def record(n: int, *, deployment: str = "checkout", kind: str = "decision") -> AuditRecord:
    """A realistic entry, different for each ``n``."""
    return AuditRecord(
        kind=kind,
        deployment=deployment,
        timestamp=f"2026-11-{1 + n % 27:02d}T10:{n % 60:02d}:00+00:00",
        trigger="error_rate_trigger",
        reason=f"error_rate_exceeded ({5 + n / 10:.1f}% > 5%)",
        severity="critical",
        action="immediate_rollback",
        metrics={"errorRate": 5.0 + n / 10, "latency": 120.5, "memoryUsage": 300.25},
        outcome="success",
        duration_seconds=1.5 + n,
        affected_users=40 + n,
        policy_digest="ab" * 32,
        evidence={"value": 5.0 + n / 10, "limit": 5.0, "requests": 400, "nested": [1, 2.5, None]},
        executor_output={"detail": "rolled back", "weights": {"canary": 0, "stable": 100}},
        watch_id=f"w{n}",
    )
