"""``open_store(url)``: the one way to get an audit store from a URL.

``sqlite:///relative/path.db`` is resolved against ``base_dir``; its folder is
created. Readers pass ``create=False``: a store that does not exist is then an
:class:`~rollguard.errors.AuditError` naming the path looked for, never a new
empty store that reads as intact. Three slashes make a relative path, four an
absolute one (``sqlite:////tmp/x.db``): every message about a SQLite store
names the resolved path, and says so when the other reading exists or was
likely meant. ``postgresql://`` URLs use psycopg 3. The store is opened eagerly —
schema created or checked, a round-trip made — so an unusable store is an
:class:`~rollguard.errors.AuditError` (exit 6) before any watch starts, never
midway. A URL that cannot name a store at all (another scheme, no path) is bad
input: a :class:`~rollguard.errors.UsageError` (exit 2) naming the ``field``
it came from. ``key`` makes the store a keyed (HMAC) one: see
:mod:`rollguard.audit.keys`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from rollguard.audit import keys, schema
from rollguard.audit.spool import SpooledStore
from rollguard.audit.sql import SqlAuditStore
from rollguard.errors import AuditError, UsageError
from rollguard.policy.model import AuditConfig, audit_url_problem

DEFAULT_URL = "sqlite:///.rollguard/audit.db"


def open_store(
    url: str = DEFAULT_URL,
    *,
    base_dir: Path | None = None,
    connect_timeout_seconds: float = 5.0,
    clock: Callable[[], float] = time.time,
    field: str = "audit store URL",
    key: keys.AuditKey | None = None,
    create: bool = True,
) -> SqlAuditStore:
    """Open the audit store at ``url`` (creating it unless ``create`` is false).

    ``field`` names the URL's source in errors. Opening does not check ``key``
    against the trail (reading needs no key); appends and ``verify`` do, and
    :meth:`SqlAuditStore.check_key` on demand.
    """
    parsed = _parse(url, field)
    if parsed.get_backend_name() == "sqlite":
        parsed = _sqlite_url(parsed, base_dir or Path.cwd(), field, create=create)
        engine = sa.create_engine(parsed)
        schema.configure_sqlite(engine)
    else:  # postgresql: _parse lets no other scheme through
        parsed = parsed.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": max(1, int(connect_timeout_seconds))},
        )
    try:
        namespaced = schema.ensure_schema(engine, create=create)
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise AuditError(f"cannot open the audit store at {_shown(parsed)}: {detail}") from exc
    except AuditError:
        engine.dispose()
        raise
    return SqlAuditStore(engine, clock=clock, key=key, namespaced=namespaced)


def open_policy_store(config: AuditConfig, *, base_dir: Path) -> SpooledStore:
    """The store a policy's ``audit`` section names; a relative SQLite path is under ``base_dir``.

    ``url_env`` (for URLs with passwords) wins over ``url``. A store that cannot be
    opened stops the watch before it starts: rollguard never starts unrecorded.
    Entries written during a later outage go to a local spool
    (``.rollguard/spool/<digest of the URL>.jsonl``) and are flushed first thing
    here and on the next append that reaches the store. ``key_env`` names the
    variable holding the key of a keyed chain; a key that does not fit the trail
    (or a keyed trail without one) stops the watch here too, before the spool is
    flushed, and a variable that is not set is bad input (exit 2).
    """
    url, field = config.url, "audit.url"
    if config.url_env is not None:
        url = os.environ.get(config.url_env, "")
        field = f"audit.url_env (${config.url_env})"
        if not url:
            raise AuditError(f"audit.url_env: environment variable {config.url_env} is not set")
    key = None
    if config.key_env is not None:
        key = keys.key_from_env(config.key_env, field="audit.key_env")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    opened = open_store(url, base_dir=base_dir, field=field, key=key)
    store = SpooledStore(
        opened,
        spool=base_dir / ".rollguard" / "spool" / f"{digest}.jsonl",
        redact=None if key is None else key.redact,
        key=key,
    )
    try:
        opened.check_key()
        store.flush()
    except AuditError:
        store.close()
        raise
    return store


def _parse(url: str, field: str) -> sa.URL:
    problem = audit_url_problem(url)
    if problem is not None:
        raise UsageError(f"{field}: {problem}")
    try:
        return sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise UsageError(
            f"{field}: not a database URL; use sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from exc


def _sqlite_url(url: sa.URL, base_dir: Path, field: str, *, create: bool) -> sa.URL:
    if not url.database or url.database == ":memory:":
        raise UsageError(f"{field}: the SQLite audit store needs a file path (sqlite:///PATH)")
    written = Path(url.database)
    path = written if written.is_absolute() else base_dir / written
    if path.exists() and not path.is_file():
        raise AuditError(f"the audit store path {path} is not a file")
    if not path.exists():
        if not create:
            hint = _slashes_hint(written, base_dir)
            raise AuditError(f"no audit store at {path} ({field}){hint}")
        hint = _slashes_hint(written, base_dir)
        if hint:
            logging.getLogger(__name__).warning("creating a new audit store at %s%s", path, hint)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AuditError(
                f"cannot create the audit store folder {path.parent}: {exc.strerror}"
            ) from exc
    return url.set(drivername="sqlite+pysqlite", database=str(path))


def _absolute_twin(written: Path) -> Path:
    """What a relative path would have meant with one more slash."""
    return Path("/") / written


def _slashes_hint(written: Path, base_dir: Path) -> str:
    """Why a relative SQLite URL names a path under ``base_dir``, and the absolute spelling."""
    twin = _absolute_twin(written)
    # Meant absolute only if the twin's folder exists and is not "/" (sqlite:///x.db).
    if written.is_absolute() or twin.parent == twin.parent.parent or not twin.parent.is_dir():
        return ""
    exists = ", which exists" if twin.is_file() else ""
    return (
        f"; sqlite:///{written} (three slashes) is relative to {base_dir}: "
        f"for {twin}{exists}, write sqlite:///{twin} (four slashes)"
    )


def _shown(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)
