"""Helpers for audit tests: raw SQL as an attacker would run it, realistic records."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import create_engine, text

from rollguard.audit.base import AuditRecord
from rollguard.audit.chain import GENESIS, columns_hash
from rollguard.audit.keys import AuditKey, key_from_env
from rollguard.audit.sql import SqlAuditStore

StoreFactory = Callable[..., SqlAuditStore]  # (key: AuditKey | None = None)


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


#: A key as a user would put in the environment; tests grep outputs for it.
KEY_TEXT = "k3y-7f1c9a0e5b2d4c68-never-shown"


def key(text: str = KEY_TEXT, name: str = "AUDIT_KEY") -> AuditKey:
    """A key as :func:`rollguard.audit.keys.key_from_env` would read it."""
    return key_from_env(name, field="--key-env", environ={name: text})


def rewrite_chain(url: str, *, key: AuditKey | None, from_id: int = 1, mark: str | None) -> None:
    """Recompute every hash from ``from_id`` on (and the head) consistently, as someone
    who can write the database would after changing history; ``key`` is theirs (``None``:
    plain SHA-256). ``mark`` replaces the key mark when given."""
    engine = create_engine(url.replace("sqlite:///", "sqlite+pysqlite:///"))
    try:
        with engine.begin() as connection:
            rows = connection.execute(text("SELECT * FROM audit_entries ORDER BY id")).mappings()
            previous, last_id = GENESIS, 0
            for row in [dict(row) for row in rows]:
                last_id = int(row["id"])
                if last_id < from_id:
                    previous = row["hash"]
                    continue
                digest = columns_hash(last_id, row, previous, key)
                connection.execute(
                    text("UPDATE audit_entries SET prev_hash = :p, hash = :h WHERE id = :i"),
                    {"p": previous, "h": digest, "i": last_id},
                )
                previous = digest
            connection.execute(
                text("UPDATE audit_head SET last_id = :i, last_hash = :h"),
                {"i": last_id, "h": previous},
            )
            if mark is not None:
                connection.execute(
                    text("UPDATE audit_meta SET value = :m WHERE key = 'chain_key'"), {"m": mark}
                )
    finally:
        engine.dispose()


def stored_mark(url: str) -> str | None:
    """The trail's key mark as stored, read outside rollguard."""
    engine = create_engine(url.replace("sqlite:///", "sqlite+pysqlite:///"))
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT value FROM audit_meta WHERE key = 'chain_key'")
            ).scalar()
    finally:
        engine.dispose()
    return None if found is None else str(found)
