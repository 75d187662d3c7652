"""Per-deployment leases kept in the audit store, so two watchers never act at once.

A lease names its owner, host and pid and expires ``lease_seconds`` after it
was taken or renewed; a watcher renews it while it runs. When the holder
crashes the lease survives until it expires — unless the holder ran on this
same host and its pid is gone, in which case it is taken over at once (the
``recovery`` path after a SIGKILL). Every change runs in a serialized
transaction: BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import socket

import sqlalchemy as sa

from rollguard.audit import schema as s
from rollguard.audit.base import LockInfo
from rollguard.errors import LockedError
from rollguard.timestamps import rfc3339


def acquire(
    engine: sa.Engine, deployment: str, *, owner: str, lease_seconds: float, now: float
) -> LockInfo:
    """Take the lease, or raise :class:`LockedError` naming who holds it."""
    with engine.connect() as connection, s.writing(connection).begin():
        _serialize(connection, deployment)
        current = _read(connection, deployment)
        if current is not None and current.owner != owner and _held(current, now):
            raise LockedError(
                f"deployment {deployment!r} is already watched by {current.owner} "
                f"(pid {current.pid} on {current.host}) since {_iso(current.acquired_at)}; "
                f"its lease runs until {_iso(current.expires_at)}. Stop that watcher, "
                "or wait for the lease to expire if it crashed on another host"
            )
        info = LockInfo(
            deployment=deployment,
            owner=owner,
            host=socket.gethostname(),
            pid=os.getpid(),
            acquired_at=now,
            expires_at=now + lease_seconds,
        )
        if current is not None:
            connection.execute(sa.delete(s.locks).where(s.locks.c.deployment == deployment))
        connection.execute(sa.insert(s.locks).values(**_values(info)))
        return info


def renew(
    engine: sa.Engine, deployment: str, *, owner: str, lease_seconds: float, now: float
) -> LockInfo:
    """Extend the lease held by ``owner``; :class:`LockedError` if it was taken over."""
    with engine.connect() as connection, s.writing(connection).begin():
        _serialize(connection, deployment)
        current = _read(connection, deployment)
        if current is None or current.owner != owner:
            holder = f"now held by {current.owner}" if current else "released"
            raise LockedError(f"lost the lock on deployment {deployment!r}: it was {holder}")
        connection.execute(
            sa.update(s.locks)
            .where(s.locks.c.deployment == deployment)
            .values(expires_at=now + lease_seconds)
        )
        return LockInfo(
            deployment=deployment,
            owner=owner,
            host=current.host,
            pid=current.pid,
            acquired_at=current.acquired_at,
            expires_at=now + lease_seconds,
        )


def release(engine: sa.Engine, deployment: str, *, owner: str) -> None:
    """Drop the lease if ``owner`` holds it."""
    with engine.connect() as connection, s.writing(connection).begin():
        _serialize(connection, deployment)
        connection.execute(
            sa.delete(s.locks).where(s.locks.c.deployment == deployment, s.locks.c.owner == owner)
        )


def holder(engine: sa.Engine, deployment: str) -> LockInfo | None:
    """The lease row for ``deployment``, expired or not."""
    with engine.connect() as connection:
        return _read(connection, deployment)


def _held(info: LockInfo, now: float) -> bool:
    """A lease binds while unexpired, unless its holder is a dead process on this host."""
    if info.expires_at <= now:
        return False
    if info.host != socket.gethostname():
        return True
    return _pid_alive(info.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _serialize(connection: sa.Connection, deployment: str) -> None:
    if connection.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(deployment.encode()).digest()[:8], "big", signed=True)
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _read(connection: sa.Connection, deployment: str) -> LockInfo | None:
    row = (
        connection.execute(sa.select(s.locks).where(s.locks.c.deployment == deployment))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return LockInfo(
        deployment=row["deployment"],
        owner=row["owner"],
        host=row["host"],
        pid=int(row["pid"]),
        acquired_at=float(row["acquired_at"]),
        expires_at=float(row["expires_at"]),
    )


def _values(info: LockInfo) -> dict[str, object]:
    return {
        "deployment": info.deployment,
        "owner": info.owner,
        "host": info.host,
        "pid": info.pid,
        "acquired_at": info.acquired_at,
        "expires_at": info.expires_at,
    }


def _iso(seconds: float) -> str:
    return rfc3339(seconds, "seconds")
