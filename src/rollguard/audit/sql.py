"""The SQL audit store (SQLAlchemy 2 Core): SQLite by default, PostgreSQL by URL.

Appends are serialized so concurrent writers can never fork the chain: on
SQLite each append runs in ``BEGIN IMMEDIATE`` (one writer at a time, the
others wait on ``busy_timeout``); on PostgreSQL it takes a transaction-scoped
advisory lock before reading the head. There is deliberately no method that
updates or deletes an entry. With a key (:mod:`rollguard.audit.keys`) every
hash is an HMAC, and the key mark is read and checked inside the same
serialized transaction as the head, so a keyed trail never gains a plain entry.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import sqlalchemy as sa

from rollguard.audit import chain, export, keys, locks
from rollguard.audit import schema as s
from rollguard.audit.base import AuditEntry, AuditRecord, LockInfo, VerifyReport
from rollguard.audit.keys import AuditKey
from rollguard.errors import AuditError

#: Entry ids are 64-bit integers in both databases; a larger one names no entry.
MAX_ENTRY_ID = 2**63 - 1
#: Advisory lock key serializing appends on PostgreSQL.
_APPEND_LOCK_KEY = 0x41756474  # "Audt"


class SqlAuditStore:
    """An :class:`~rollguard.audit.base.AuditStore` over one SQLAlchemy engine.

    ``key`` makes appends and ``verify`` use HMAC-SHA256 under it (a keyed trail).
    ``namespaced=False`` reads a store from before ``audit_entries.namespace``
    (opened by a reader, which never adds the column): its entries have none.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], float] = time.time,
        key: AuditKey | None = None,
        namespaced: bool = True,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._key = key
        self._postgres = engine.dialect.name == "postgresql"
        self._namespaced = namespaced
        self._columns = [
            column for column in s.entries.c if namespaced or column.name != "namespace"
        ]

    @property
    def url(self) -> str:
        """Where the store lives, with any password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def location(self) -> str:
        """What a person reads as the store: a SQLite file's path, else the URL."""
        url = self._engine.url
        if url.get_backend_name() == "sqlite":
            return str(url.database)
        return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)

    def append(self, record: AuditRecord) -> int:
        clean = chain.normalize_record(self._key.redact(record) if self._key else record)
        with (
            self._guard("append to"),
            self._engine.connect() as connection,
            s.writing(connection).begin(),
        ):
            if self._postgres:
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK_KEY}
                )
            row = connection.execute(sa.select(s.head.c.last_id, s.head.c.last_hash)).first()
            stored = _mark(connection)
            keys.check_append(stored, entries=row is not None, key=self._key, where=self.url)
            if stored is None and row is None:  # the first entry decides, for good
                connection.execute(
                    sa.insert(s.meta).values(key=keys.MARK_KEY, value=keys.mark(self._key))
                )
            last_id, prev_hash = (row[0], row[1]) if row else (0, chain.GENESIS)
            entry_id = last_id + 1
            digest = chain.entry_hash(entry_id, clean, prev_hash, self._key)
            connection.execute(
                sa.insert(s.entries).values(_row(entry_id, clean, prev_hash, digest))
            )
            if row is None:
                connection.execute(
                    sa.insert(s.head).values(id=1, last_id=entry_id, last_hash=digest)
                )
            else:
                connection.execute(
                    sa.update(s.head)
                    .where(s.head.c.id == 1)
                    .values(last_id=entry_id, last_hash=digest)
                )
        return entry_id

    def list(
        self,
        *,
        since: str | None = None,
        deployment: str | None = None,
        kind: str | None = None,
        details: bool = True,
        newest: int | None = None,
        namespace: str | None = None,
    ) -> Sequence[AuditEntry]:
        """Entries in chain order; ``details=False`` leaves metrics, evidence and executor
        output empty (not parsed) for summaries such as the report; ``newest`` keeps only
        the last N matches (read by the database, not by loading the whole trail).
        ``namespace`` keeps entries recorded in it: never one recorded without."""
        if namespace is not None and not self._namespaced:
            return []  # a store from before namespaces holds none
        order = s.entries.c.id.desc() if newest is not None else s.entries.c.id
        query = sa.select(*self._columns).order_by(order)
        if newest is not None:
            query = query.limit(newest)
        if since is not None:
            query = query.where(s.entries.c.timestamp >= chain.normalize_timestamp(since))
        if deployment is not None:
            query = query.where(s.entries.c.deployment == deployment)
        if namespace is not None:
            query = query.where(s.entries.c.namespace == namespace)
        if kind is not None:
            query = query.where(s.entries.c.kind == kind)
        with self._guard("read"), self._engine.connect() as connection:
            found = [_entry(row, details=details) for row in connection.execute(query).mappings()]
        return found[::-1] if newest is not None else found

    def get(self, entry_id: int) -> AuditEntry | None:
        if not 0 < entry_id <= MAX_ENTRY_ID:  # the databases' integers are 64-bit
            return None
        with self._guard("read"), self._engine.connect() as connection:
            row = (
                connection.execute(sa.select(*self._columns).where(s.entries.c.id == entry_id))
                .mappings()
                .first()
            )
        return _entry(row) if row else None

    def verify(self) -> VerifyReport:
        # One read transaction (a snapshot) so a concurrent append is not taken for an insertion.
        options = {"isolation_level": "REPEATABLE READ"} if self._postgres else {}
        with (
            self._guard("verify"),
            self._engine.connect() as connection,
            connection.execution_options(**options).begin(),
        ):
            row = connection.execute(sa.select(s.head.c.last_id, s.head.c.last_hash)).first()
            stored = _mark(connection)
            keys.need_key_to_verify(stored, self._key, where=self.url)

            def owner_of(digest: str) -> int | None:
                found = connection.execute(
                    sa.select(s.entries.c.id).where(s.entries.c.hash == digest).limit(1)
                ).first()
                return int(found[0]) if found else None

            report = chain.verify_entries(
                _links(connection, 5000, self._key, self._columns),
                head=(int(row[0]), str(row[1])) if row else None,
                owner_of=owner_of,
            )
            return keys.judge(report, stored, self._key)

    def check_key(self) -> None:
        """Refuse now (:class:`~rollguard.audit.keys.KeyMismatchError`) what ``append``
        would refuse for the key: a watch checks before it starts, not midway."""
        with self._guard("read"), self._engine.connect() as connection, connection.begin():
            row = connection.execute(sa.select(s.head.c.last_id)).first()
            keys.check_append(
                _mark(connection), entries=row is not None, key=self._key, where=self.url
            )

    def export(
        self,
        out: TextIO,
        *,
        format: str,
        since: str | None = None,
        deployment: str | None = None,
        namespace: str | None = None,
    ) -> int:
        """Write entries as JSON or CSV to ``out``; return how many were written."""
        found = self.list(since=since, deployment=deployment, namespace=namespace)
        return export.write(found, out, format=format)

    def acquire_lock(self, deployment: str, *, owner: str, lease_seconds: float) -> LockInfo:
        with self._guard("lock in"):
            return locks.acquire(
                self._engine,
                deployment,
                owner=owner,
                lease_seconds=lease_seconds,
                now=self._clock(),
            )

    def renew_lock(self, deployment: str, *, owner: str, lease_seconds: float) -> LockInfo:
        with self._guard("lock in"):
            return locks.renew(
                self._engine,
                deployment,
                owner=owner,
                lease_seconds=lease_seconds,
                now=self._clock(),
            )

    def release_lock(self, deployment: str, *, owner: str) -> None:
        with self._guard("unlock in"):
            locks.release(self._engine, deployment, owner=owner)

    def lock_holder(self, deployment: str) -> LockInfo | None:
        """Who holds the deployment's lease right now, if anyone (expired leases included)."""
        with self._guard("read"):
            return locks.holder(self._engine, deployment)

    def close(self) -> None:
        self._engine.dispose()

    def _guard(self, verb: str) -> contextlib.AbstractContextManager[None]:
        return database_errors(f"cannot {verb} the audit store at {self.url}")


@contextlib.contextmanager
def database_errors(prefix: str) -> Iterator[None]:
    """Turn SQLAlchemy's errors into one :class:`AuditError` naming the store."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise AuditError(f"{prefix}: {detail}") from exc
    except sa.exc.SQLAlchemyError as exc:
        raise AuditError(f"{prefix}: {exc}") from exc


def _mark(connection: sa.Connection) -> str | None:
    """The trail's key mark; ``None`` before the first append and in pre-key databases."""
    query = sa.select(s.meta.c.value).where(s.meta.c.key == keys.MARK_KEY)
    found = connection.execute(query).scalar()
    return None if found is None else str(found)


def _links(
    connection: sa.Connection, batch: int, key: AuditKey | None, columns: list[sa.Column[Any]]
) -> Iterator[chain.Link]:
    """Rows as chain links, their JSON left unparsed (verify only hashes the stored text)."""
    after = 0
    while True:
        query = sa.select(*columns).where(s.entries.c.id > after).order_by(s.entries.c.id)
        rows = connection.execute(query.limit(batch)).mappings().all()
        for row in rows:
            entry_id, prev_hash = int(row["id"]), row["prev_hash"]
            actual = chain.columns_hash(entry_id, row, prev_hash, key)
            yield chain.Link(entry_id, prev_hash, row["hash"], actual)
        if len(rows) < batch:
            return
        after = int(rows[-1]["id"])


def _row(entry_id: int, record: AuditRecord, prev_hash: str, digest: str) -> dict[str, Any]:
    return {"id": entry_id, **chain.record_columns(record), "prev_hash": prev_hash, "hash": digest}


def _entry(row: sa.RowMapping, *, details: bool = True) -> AuditEntry:
    parse = _json if details else _skip
    record = AuditRecord(
        kind=row["kind"],
        deployment=row["deployment"],
        timestamp=row["timestamp"],
        trigger=row["trigger"],
        reason=row["reason"],
        severity=row["severity"],
        action=row["action"],
        metrics=parse(row["metrics"]),
        outcome=row["outcome"],
        duration_seconds=float(row["duration_seconds"]),
        affected_users=int(row["affected_users"]),
        policy_digest=row["policy_digest"],
        evidence=parse(row["evidence"]),
        executor_output=parse(row["executor_output"]),
        watch_id=row["watch_id"],
        namespace=row.get("namespace") or "",
    )
    return AuditEntry(
        id=int(row["id"]), record=record, prev_hash=row["prev_hash"], hash=row["hash"]
    )


def _json(raw: str) -> Any:
    """Parse a stored JSON column; a mangled one reads back as-is so verify flags it."""
    try:
        return json.loads(raw)
    except ValueError:
        return {"unparseable": raw}


def _skip(_raw: str) -> Any:
    return {}
