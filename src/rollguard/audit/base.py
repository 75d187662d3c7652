"""The audit interface: an append-only record of every decision and action.

The controller appends :class:`AuditRecord` values; a store adds the id and
the hash chain. There is no update or delete anywhere in the interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class AuditRecord:
    """One entry as the controller sees it: the seed's RollbackAuditEntry and more.

    ``kind`` is one of ``deployment_start``, ``decision``, ``action_intent``,
    ``action_result``, ``deployment_end``, ``notification``, ``gate``, ``recovery``.
    ``metrics`` holds the seed's ``errorRate``, ``latency`` and ``memoryUsage``.
    """

    kind: str
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


class AuditSink(Protocol):
    """Where the controller writes; stores add ids and the hash chain."""

    def append(self, record: AuditRecord) -> int:
        """Persist durably before returning; return the entry's id."""


class MemoryAuditSink:
    """Keeps records in a list: the default when no store is configured, and for tests."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def append(self, record: AuditRecord) -> int:
        self.records.append(record)
        return len(self.records)
