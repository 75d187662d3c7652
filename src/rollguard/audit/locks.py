"""Per-deployment leases kept in the audit store, so two watchers never act at once.

A lease names its owner, host and pid and expires ``lease_seconds`` after it
was taken or renewed; a watcher renews it while it runs. When the holder
crashes the lease survives until it expires — unless the holder ran on this
same host and its pid is gone, in which case it is taken over at once (the
``recovery`` path after a SIGKILL). Every change runs in a serialized
transaction: BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL.

A lease is keyed by :func:`lock_key`: ``namespace/name`` where the deployment
has a namespace (Kubernetes), so ``shop`` in two namespaces is two leases, and
the bare name elsewhere. A Kubernetes name has no ``/``, so the two forms never
meet. A lease on the bare name (taken by a rollguard from before namespaced
keys, or by a watch that knows no namespace) still keeps every namespaced
watch of that name out while it binds: an upgrade never lets two watchers of
one deployment act at once.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable

import sqlalchemy as sa

from rollguard.audit import schema as s
from rollguard.audit.base import LockInfo
from rollguard.errors import LockedError
from rollguard.timestamps import rfc3339

#: The ``audit_locks.deployment`` column's width.
KEY_LENGTH = 255


def lock_key(deployment: str, namespace: str | None = None) -> str:
    """The lease's key: ``namespace/name``, or the bare name without a namespace.

    A key longer than the column (a 253-character name in a long namespace) keeps
    its start and ends with a digest of the whole, so it stays unique.
    """
    key = f"{namespace}/{deployment}" if namespace else deployment
    if len(key) <= KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{key[: KEY_LENGTH - len(digest) - 1]}~{digest}"


def _legacy(key: str) -> str | None:
    """The bare-name key a namespaced key must also respect."""
    namespace, slash, name = key.partition("/")
    return name if slash and namespace else None


def acquire(
    engine: sa.Engine, deployment: str, *, owner: str, lease_seconds: float, now: float
) -> LockInfo:
    """Take the lease, or raise :class:`LockedError` naming who holds it."""
    with engine.connect() as connection, s.writing(connection).begin():
        bare = _legacy(deployment)
        if bare is not None:  # serialized first, always in this order: no deadlock
            _refuse_if_held(
                connection,
                bare,
                owner=owner,
                now=now,
                refusal=lambda lease: (
                    f"deployment {deployment!r} is already watched under its bare name "
                    f"{bare!r} by {lease.owner} (pid {lease.pid} on {lease.host}), a watcher "
                    f"that names no namespace; its lease runs until {_iso(lease.expires_at)}"
                ),
            )
        current = _refuse_if_held(
            connection,
            deployment,
            owner=owner,
            now=now,
            refusal=lambda lease: (
                f"deployment {deployment!r} is already watched by {lease.owner} "
                f"(pid {lease.pid} on {lease.host}) since {_iso(lease.acquired_at)}; "
                f"its lease runs until {_iso(lease.expires_at)}. Stop that watcher, "
                "or wait for the lease to expire if it crashed on another host"
            ),
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


def _refuse_if_held(
    connection: sa.Connection,
    key: str,
    *,
    owner: str,
    now: float,
    refusal: Callable[[LockInfo], str],
) -> LockInfo | None:
    """Serialize on ``key`` and read its lease; :class:`LockedError` if another owner holds it.

    ``refusal`` words the error from the binding lease; the lease row read
    (expired, ours or absent) is returned for the caller to replace.
    """
    _serialize(connection, key)
    lease = _read(connection, key)
    if lease is not None and lease.owner != owner and _held(lease, now):
        raise LockedError(refusal(lease))
    return lease


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
