"""The audit interface: an append-only record of every decision and action.

The controller appends :class:`AuditRecord` values; a store adds the id and
the hash chain and returns :class:`AuditEntry` values. There is no update or
delete anywhere in the interface: a store offers append, read, verify and
export, plus the per-deployment lease lock that keeps two watchers apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TextIO, get_args, runtime_checkable

from rollguard.errors import AuditError

#: The kinds of entry the controller writes; nothing else is ever appended.
Kind = Literal[
    "deployment_start",
    "decision",
    "action_intent",
    "action_result",
    "deployment_end",
    "notification",
    "gate",
    "recovery",
    "drill",
    "action_step",
    "dry_run",
    "spool_refused",  # spooled entries that failed their chain, set aside (audit/spool.py)
    "command",  # an operator's command to serve (pause, resume, abort, promote)
    "release",  # a new release of the deployment began (serve's API, a new revision)
    "promotion_step",  # a progressive release moved the canary's share (controller/promotion.py)
    "hook",  # a release hook was called, with its result (controller/hooks.py)
]
KINDS: tuple[Kind, ...] = get_args(Kind)


@dataclass(frozen=True)
class AuditRecord:
    """One entry as the controller sees it: a RollbackAuditEntry and more.

    ``kind`` is one of :data:`KINDS`. ``metrics`` holds ``errorRate``,
    ``latency`` and ``memoryUsage``. ``affected_users`` is an estimate: the
    requests the bad (canary) version served from the start of the detection
    window until traffic was off it (docs/audit.md, "Affected users").
    ``namespace`` is the Deployment's Kubernetes namespace, ``""`` where it has
    none: with ``deployment`` it names one Deployment, ``shop/cart`` apart from
    ``staging/cart``. The chain hashes it only when set, so entries written
    before it existed verify unchanged.
    """

    kind: Kind
    deployment: str
    timestamp: str  # RFC 3339, UTC
    trigger: str | None = None
    reason: str = ""
    severity: str = "info"
    action: str = "continue"
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    outcome: str = ""
    duration_seconds: float = 0.0
    affected_users: int = 0
    policy_digest: str = ""
    evidence: Mapping[str, object] = field(default_factory=dict)
    executor_output: Mapping[str, object] = field(default_factory=dict)
    watch_id: str = ""
    namespace: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:  # the type says so; a value from outside must too
            raise AuditError(f"audit record kind {self.kind!r} is not one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class AuditEntry:
    """A stored record: its id, its place in the hash chain, and the record itself."""

    id: int
    record: AuditRecord
    prev_hash: str
    hash: str


Problem = Literal["modified", "deleted", "inserted", "reordered"]


@dataclass(frozen=True)
class VerifyReport:
    """The result of walking the hash chain: intact, or the first break found."""

    ok: bool
    entries: int
    head_hash: str
    entry_id: int | None = None
    problem: Problem | None = None
    message: str = "audit trail intact"
    #: The id of the key the walk hashed with; ``None`` for a plain SHA-256 walk.
    key_id: str | None = None


@dataclass(frozen=True)
class LockInfo:
    """Who holds a deployment's lock and until when (seconds since the epoch)."""

    deployment: str
    owner: str
    host: str
    pid: int
    acquired_at: float
    expires_at: float


class AuditSink(Protocol):
    """Where the controller writes; stores add ids and the hash chain."""

    def append(self, record: AuditRecord) -> int:
        """Persist durably before returning; return the entry's id."""


@runtime_checkable
class AuditStore(AuditSink, Protocol):
    """A durable, hash-chained store; every backend passes tests/audit/test_contract.py."""

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
        """Entries in chain order, optionally from an RFC 3339 time on, for one deployment.

        ``deployment`` alone matches that name in every namespace and entries
        with none; ``namespace`` keeps only entries recorded in that namespace.
        ``details=False`` skips parsing metrics, evidence and executor output;
        ``newest`` keeps only the last N matching entries (still in chain order).
        """

    def get(self, entry_id: int) -> AuditEntry | None:
        """One entry by id, or ``None``."""

    def verify(self) -> VerifyReport:
        """Recompute the chain; name the first entry modified, deleted, inserted or reordered."""

    def export(
        self,
        out: TextIO,
        *,
        format: str,
        since: str | None = None,
        deployment: str | None = None,
        namespace: str | None = None,
    ) -> int:
        """Write entries as ``json`` or ``csv``; return how many."""

    def lock_holder(self, deployment: str) -> LockInfo | None:
        """Who holds the deployment's lease (expired or not), if anyone."""

    def acquire_lock(self, deployment: str, *, owner: str, lease_seconds: float) -> LockInfo:
        """Take the deployment's lease or raise :class:`~rollguard.errors.LockedError`."""

    def renew_lock(self, deployment: str, *, owner: str, lease_seconds: float) -> LockInfo:
        """Extend a held lease; :class:`~rollguard.errors.LockedError` when it was lost."""

    def release_lock(self, deployment: str, *, owner: str) -> None:
        """Give the lease up (no-op when not held by ``owner``)."""

    def close(self) -> None:
        """Release connections."""


class StoreWrapper:
    """A store in front of another: reads, exports and leases go to ``inner``.

    Subclasses decide where appends go (a local spool, a writer thread).
    """

    def __init__(self, inner: AuditStore) -> None:
        self.inner = inner

    def append(self, record: AuditRecord) -> int:
        return self.inner.append(record)

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
        return self.inner.list(
            since=since,
            deployment=deployment,
            kind=kind,
            details=details,
            newest=newest,
            namespace=namespace,
        )

    def get(self, entry_id: int) -> AuditEntry | None:
        return self.inner.get(entry_id)

    def verify(self) -> VerifyReport:
        return self.inner.verify()

    def export(
        self,
        out: TextIO,
        *,
        format: str,
        since: str | None = None,
        deployment: str | None = None,
        namespace: str | None = None,
    ) -> int:
        return self.inner.export(
            out, format=format, since=since, deployment=deployment, namespace=namespace
        )

    def lock_holder(self, deployment: str) -> LockInfo | None:
        return self.inner.lock_holder(deployment)

    def acquire_lock(self, deployment: str, *, owner: str, lease_seconds: float) -> LockInfo:
        return self.inner.acquire_lock(deployment, owner=owner, lease_seconds=lease_seconds)

    def renew_lock(self, deployment: str, *, owner: str, lease_seconds: float) -> LockInfo:
        return self.inner.renew_lock(deployment, owner=owner, lease_seconds=lease_seconds)

    def release_lock(self, deployment: str, *, owner: str) -> None:
        self.inner.release_lock(deployment, owner=owner)

    def close(self) -> None:
        self.inner.close()


class MemoryAuditSink:
    """Keeps records in a list: the default when no store is configured, and for tests."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def append(self, record: AuditRecord) -> int:
        self.records.append(record)
        return len(self.records)
