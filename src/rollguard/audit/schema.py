"""Tables, append-only triggers and connection settings for both SQL backends.

``audit_entries`` is the chain; database triggers refuse UPDATE, DELETE (and,
on PostgreSQL, TRUNCATE) on it, so even a bug or a hand-typed statement
cannot rewrite history without first dropping a trigger — which ``verify``
then exposes through the chain. ``audit_head`` holds the last id and hash
(the tail check, and the row PostgreSQL appenders lock); ``audit_locks`` holds
the per-deployment leases; ``audit_meta`` marks a database as ours.

``audit_entries.namespace`` came later: a writer adds it to a store made
before it (``ALTER TABLE ... ADD COLUMN``, which fires no row trigger and
rewrites no row), with ``''`` as its default so rollguards from before it still
append. A reader never changes a store: it reads one without the column as
entries without namespaces. The schema version stays 1, as both kinds of
rollguard read and write both kinds of store.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from rollguard.errors import AuditError

FORMAT = "rollguard-audit"
SCHEMA_VERSION = "1"

metadata = sa.MetaData()

entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("deployment", sa.String(255), nullable=False),
    sa.Column("watch_id", sa.String(64), nullable=False),
    sa.Column("timestamp", sa.String(32), nullable=False),
    sa.Column("trigger", sa.String(255), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("duration_seconds", sa.Double, nullable=False),
    sa.Column("affected_users", sa.BigInteger, nullable=False),
    sa.Column("policy_digest", sa.String(64), nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("executor_output", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # Last, where ALTER TABLE puts it in older stores: every store has one column order.
    sa.Column("namespace", sa.String(255), nullable=False, server_default=""),
    sa.Index("ix_audit_entries_timestamp", "timestamp"),
    sa.Index("ix_audit_entries_deployment", "deployment", "id"),
    sa.Index("ix_audit_entries_hash", "hash"),
)

head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)

locks = sa.Table(
    "audit_locks",
    metadata,
    sa.Column("deployment", sa.String(255), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
)

meta = sa.Table(
    "audit_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

_SQLITE_TRIGGERS = [
    "CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
]

_POSTGRES_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION rollguard_audit_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'audit entries are append-only'; END $$",
    "CREATE OR REPLACE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
    "FOR EACH ROW EXECUTE FUNCTION rollguard_audit_append_only()",
    "CREATE OR REPLACE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
    "FOR EACH ROW EXECUTE FUNCTION rollguard_audit_append_only()",
    "CREATE OR REPLACE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION rollguard_audit_append_only()",
]

#: A constant key for the PostgreSQL advisory lock taken while creating the schema.
_SCHEMA_LOCK_KEY = 0x526F6C6C  # "Roll"


def configure_sqlite(engine: sa.Engine) -> None:
    """synchronous=FULL, a busy timeout, and our own BEGIN so writers can ask for IMMEDIATE.

    WAL is set once when the schema is created (it persists in the file), so
    opening a foreign database never changes it.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writing(connection: sa.Connection) -> sa.Connection:
    """Mark a connection's next transaction as a writer (BEGIN IMMEDIATE on SQLite)."""
    return connection.execution_options(immediate=True)


def ensure_schema(engine: sa.Engine, *, create: bool = True) -> bool:
    """Create the schema in an empty database; refuse a foreign one; check the version.

    Readers pass ``create=False``: an empty database is then no audit store (an
    AuditError), never made into one, and an older one is not upgraded. Returns
    whether ``audit_entries`` has its ``namespace`` column (a writer adds it).
    """
    with engine.connect() as connection, writing(connection).begin():
        if engine.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY}
            )
        names = set(sa.inspect(connection).get_table_names())
        if "audit_meta" not in names:
            if names:
                shown = ", ".join(sorted(names)[:5])
                raise AuditError(
                    f"{_where(engine)} is not a rollguard audit database "
                    f"(it holds other tables: {shown}); point --db at a new or rollguard file"
                )
            if not create:
                raise AuditError(f"no audit store at {_where(engine)}: it holds no audit trail")
            _create(connection)
            return True
        found = {row[0]: row[1] for row in connection.execute(sa.select(meta.c.key, meta.c.value))}
        if found.get("format") != FORMAT:
            raise AuditError(f"{_where(engine)} is not a rollguard audit database")
        if found.get("schema_version") != SCHEMA_VERSION:
            raise AuditError(
                f"{_where(engine)} has audit schema version {found.get('schema_version')}; "
                f"this rollguard reads version {SCHEMA_VERSION}"
            )
        columns = {column["name"] for column in sa.inspect(connection).get_columns("audit_entries")}
        if "namespace" in columns:
            return True
        if not create:
            return False
        connection.exec_driver_sql(
            "ALTER TABLE audit_entries ADD COLUMN namespace VARCHAR(255) NOT NULL DEFAULT ''"
        )
        return True


def _create(connection: sa.Connection) -> None:
    if connection.dialect.name == "sqlite":
        # journal_mode cannot change inside a transaction: commit the empty one around it.
        connection.exec_driver_sql("COMMIT")
        connection.exec_driver_sql("PRAGMA journal_mode = WAL")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    metadata.create_all(connection)
    triggers = _POSTGRES_TRIGGERS if connection.dialect.name == "postgresql" else _SQLITE_TRIGGERS
    for statement in triggers:
        connection.exec_driver_sql(statement)
    connection.execute(
        sa.insert(meta),
        [{"key": "format", "value": FORMAT}, {"key": "schema_version", "value": SCHEMA_VERSION}],
    )


def _where(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
