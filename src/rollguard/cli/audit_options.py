"""Options shared by ``rollguard audit`` and ``rollguard report``: the store URL and --since."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rollguard.errors import UsageError

if TYPE_CHECKING:
    from rollguard.audit.sql import SqlAuditStore

DEFAULT_DB = "sqlite:///.rollguard/audit.db"
DB_ENV = "ROLLGUARD_AUDIT_DB"

DbOption = typer.Option(
    None,
    "--db",
    help=f"Audit store URL (sqlite:///PATH, postgresql://...); default ${DB_ENV} or {DEFAULT_DB}.",
    show_default=False,
)


PolicyOption = typer.Option(
    None,
    "--policy",
    "-p",
    help="Use the store named in this policy's audit section (relative to its folder).",
    show_default=False,
)


def store_url(db: str | None) -> str:
    """The URL given, else the environment's, else the default SQLite file."""
    return db or os.environ.get(DB_ENV) or DEFAULT_DB


def open_cli_store(db: str | None, policy: Path | None) -> SqlAuditStore:
    """The store of ``--db``, else of ``--policy``'s audit section, else the default."""
    from rollguard.audit.factory import open_store

    if db is not None:
        return open_store(db, field="--db")
    if policy is None:
        return open_store(store_url(None), field=f"${DB_ENV}")
    from rollguard.policy import load_policy

    config = load_policy(policy).audit
    url, field = config.url, f"{policy}: audit.url"
    if config.url_env is not None:
        url = os.environ.get(config.url_env, "")
        field = f"{policy}: audit.url_env (${config.url_env})"
        if not url:
            raise UsageError(f"audit.url_env: environment variable {config.url_env} is not set")
    return open_store(url, base_dir=policy.resolve().parent, field=field)


def since_timestamp(raw: str | None, *, now: datetime | None = None) -> str | None:
    """RFC 3339 start of the period from ``30d``/``12h`` or a date or date-time; UsageError else."""
    if raw is None:
        return None
    from rollguard.policy.units import parse_duration

    current = now or datetime.now(UTC)
    try:
        return _iso(current - timedelta(seconds=parse_duration(raw)))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise UsageError(
            f"--since: expected a duration such as 30d, 12h or 90m, or a date such as "
            f"2026-11-01 or 2026-11-01T08:00:00Z; got {raw!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _iso(parsed)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
