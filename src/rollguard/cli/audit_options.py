"""Options shared by ``rollguard audit`` and ``rollguard report``: store URL, key, --since."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rollguard.errors import UsageError

if TYPE_CHECKING:
    from rollguard.audit.sql import SqlAuditStore

DEFAULT_DB = "sqlite:///.rollguard/audit.db"
DB_ENV = "ROLLGUARD_AUDIT_DB"

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=f"Audit store URL (sqlite:///PATH, postgresql://...); default ${DB_ENV} or "
        f"{DEFAULT_DB}. Four slashes for an absolute path: sqlite:////var/lib/audit.db.",
        show_default=False,
    ),
]

PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        "-p",
        help="Use the store named in this policy's audit section (relative to its folder).",
        show_default=False,
    ),
]

KeyEnvOption = Annotated[
    str | None,
    typer.Option(
        "--key-env",
        metavar="NAME",
        help="Environment variable holding the secret key of a keyed audit trail; "
        "default the --policy's audit.key_env.",
        show_default=False,
    ),
]

SinceOption = Annotated[
    str | None,
    typer.Option(help="Only entries from this long ago (30d) or date.", show_default=False),
]

DeploymentOption = Annotated[
    str | None,
    typer.Option(
        help="Only this deployment's entries: NAME (in every namespace, and entries "
        "recorded without one) or NAMESPACE/NAME.",
        show_default=False,
    ),
]

NamespaceOption = Annotated[
    str | None,
    typer.Option(
        help="Only entries about deployments in this Kubernetes namespace.", show_default=False
    ),
]


def deployment_filter(
    deployment: str | None, namespace: str | None
) -> tuple[str | None, str | None]:
    """``(name, namespace)`` to filter by, from ``--deployment`` (``NAME`` or
    ``NAMESPACE/NAME``) and ``--namespace``; UsageError when they disagree."""
    if namespace is not None and (not namespace or "/" in namespace):
        raise UsageError(f"--namespace: expected a namespace name; got {namespace!r}")
    if deployment is None or "/" not in deployment:
        if deployment == "":
            raise UsageError("--deployment: expected NAME or NAMESPACE/NAME; got ''")
        return deployment, namespace
    given, _, name = deployment.partition("/")
    if not given or not name or "/" in name:
        raise UsageError(f"--deployment: expected NAME or NAMESPACE/NAME; got {deployment!r}")
    if namespace is not None and namespace != given:
        raise UsageError(
            f"--deployment {deployment} names namespace {given!r} but --namespace is "
            f"{namespace!r}; give one of them"
        )
    return name, given


def store_url(db: str | None) -> str:
    """The URL given, else the environment's, else the default SQLite file."""
    return db or os.environ.get(DB_ENV) or DEFAULT_DB


def open_cli_store(
    db: str | None, policy: Path | None, *, key_env: str | None = None, verifying: bool = False
) -> SqlAuditStore:
    """The existing store of ``--db``, else of ``--policy``'s audit section, else the default.

    Reading commands never create a store: one that does not exist is an
    AuditError (exit 6) naming the path looked for.

    The key is ``--key-env``'s, else (only for commands that verify, the only
    ones that hash) the policy's ``audit.key_env``; reading needs no key.
    """
    from rollguard.audit.factory import open_store
    from rollguard.audit.keys import key_from_env

    key = None if key_env is None else key_from_env(key_env, field="--key-env")
    if db is not None:
        return open_store(db, field="--db", key=key, create=False)
    if policy is None:
        url = store_url(None)
        field = f"${DB_ENV}" if os.environ.get(DB_ENV) else "the default; give --db or --policy"
        return open_store(url, field=field, key=key, create=False)
    from rollguard.policy import load_policy

    config = load_policy(policy).audit
    url, field = config.url, f"{policy}: audit.url"
    if config.url_env is not None:
        url = os.environ.get(config.url_env, "")
        field = f"{policy}: audit.url_env (${config.url_env})"
        if not url:
            raise UsageError(f"audit.url_env: environment variable {config.url_env} is not set")
    if key is None and verifying and config.key_env is not None:
        key = key_from_env(config.key_env, field=f"{policy}: audit.key_env")
    return open_store(url, base_dir=policy.resolve().parent, field=field, key=key, create=False)


def since_timestamp(raw: str | None, *, now: datetime | None = None) -> str | None:
    """RFC 3339 start of the period from ``30d``/``12h`` or a date or date-time; UsageError else."""
    if raw is None:
        return None
    from rollguard.policy.units import parse_duration
    from rollguard.timestamps import parse_rfc3339, rfc3339

    current = now or datetime.now(UTC)
    try:
        seconds = parse_duration(raw)
    except ValueError:
        pass
    else:
        try:
            return rfc3339(current - timedelta(seconds=seconds))
        except OverflowError:
            raise UsageError(f"--since: {raw} reaches back before the year 1") from None
    try:
        return rfc3339(parse_rfc3339(raw))
    except ValueError:
        raise UsageError(
            f"--since: expected a duration such as 30d, 12h or 90m, or a date such as "
            f"2026-11-01 or 2026-11-01T08:00:00Z; got {raw!r}"
        ) from None
