"""Export entries as JSON (RollbackAuditEntry's names) or CSV for auditors."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import Any, TextIO

from rollguard.audit.base import AuditEntry
from rollguard.errors import UsageError

FORMATS = ("json", "csv")

CSV_COLUMNS = (
    "id",
    "timestamp",
    "kind",
    "deployment",
    "trigger",
    "reason",
    "severity",
    "action",
    "errorRate",
    "latency",
    "memoryUsage",
    "outcome",
    "duration",
    "affectedUsers",
    "policyDigest",
    "watchId",
    "namespace",
    "evidence",
    "executorOutput",
    "prevHash",
    "hash",
)


def as_dict(entry: AuditEntry) -> dict[str, Any]:
    """One entry in RollbackAuditEntry's camelCase names, plus rollguard's own."""
    record = entry.record
    metrics = record.metrics
    return {
        "id": entry.id,
        "timestamp": record.timestamp,
        "kind": record.kind,
        "deployment": record.deployment,
        "trigger": record.trigger,
        "reason": record.reason,
        "severity": record.severity,
        "action": record.action,
        "metrics": {
            "errorRate": metrics.get("errorRate"),
            "latency": metrics.get("latency"),
            "memoryUsage": metrics.get("memoryUsage"),
        },
        "outcome": record.outcome,
        "duration": record.duration_seconds,
        "affectedUsers": record.affected_users,
        "policyDigest": record.policy_digest,
        "watchId": record.watch_id,
        "namespace": record.namespace or None,
        "evidence": dict(record.evidence),
        "executorOutput": dict(record.executor_output),
        "prevHash": entry.prev_hash,
        "hash": entry.hash,
    }


def write(entries: Iterable[AuditEntry], out: TextIO, *, format: str) -> int:
    """Write ``entries`` to ``out``; return the count. Unknown format: :class:`UsageError`."""
    if format not in FORMATS:
        raise UsageError(f"unknown export format {format!r}; expected one of: json, csv")
    rows = [as_dict(entry) for entry in entries]
    if format == "json":
        json.dump(rows, out, indent=2, sort_keys=False)
        out.write("\n")
        return len(rows)
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        metrics = row.pop("metrics")
        flat = {**row, **metrics}
        flat["evidence"] = json.dumps(row["evidence"], sort_keys=True)
        flat["executorOutput"] = json.dumps(row["executorOutput"], sort_keys=True)
        writer.writerow(flat)
    return len(rows)
