"""A real watcher process for the crash tests: ``crash_watch.py STATE DB ACTION CRASH``.

ACTION is ``immediate``, ``gradual``, ``healthy`` (a long healthy watch on
the wall clock, for the lock test) or ``progressive`` (a healthy release
promoted 10 -> 50 -> 100 %). CRASH is ``none``, ``audit:<kind>:<n>``
(SIGKILL right after the n-th entry of that kind is durably appended) or
``exec:<method>:<n>`` (SIGKILL right after the n-th executor call changed
the deployment). The tests build the watch that follows with :func:`next_watch`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from file_executor import FileExecutor

from rollguard.audit.base import AuditRecord, AuditSink
from rollguard.audit.factory import open_store
from rollguard.audit.sql import SqlAuditStore
from rollguard.controller import SimulatedClock, SystemClock, Watcher
from rollguard.notifiers.log import LogNotifier
from rollguard.policy import parse_policy
from rollguard.policy.model import Policy
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider

POLICY = """
target: {{deployment: shop}}
metrics: {{provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}}
analysis: {{interval: {interval}, persistence: 1}}
rollback: {{steps: [25, 50, 75, 100], step_wait: 10s}}
error_rate_trigger: {{threshold: 5%, measurement_window: 1 minute, action: {action}}}
"""


class CrashingStore:
    """The real store; SIGKILLs the process right after a chosen append."""

    def __init__(self, store: SqlAuditStore, crash: tuple[str, int] | None) -> None:
        self._store = store
        self._crash = crash
        self._seen: dict[str, int] = {}

    def append(self, record: AuditRecord) -> int:
        entry_id = self._store.append(record)
        self._seen[record.kind] = self._seen.get(record.kind, 0) + 1
        if self._crash == (record.kind, self._seen[record.kind]):
            os.kill(os.getpid(), signal.SIGKILL)
        return entry_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


PROGRESSIVE = """
target: {deployment: shop}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}
analysis: {interval: 5s}
error_rate_trigger: {increase_percent: 200, compare_with: stable, measurement_window: 1 minute}
promotion: {steps: [10, 50, 100], min_step_duration: 20s}
"""


def make_policy(action: str, *, interval: str = "5s") -> Policy:
    if action == "progressive":
        return parse_policy(PROGRESSIVE)
    name = "gradual_rollback" if action == "gradual" else "immediate_rollback"
    return parse_policy(POLICY.format(action=name, interval=interval))


def provider(*, healthy: bool, counts: bool = False) -> InMemoryProvider:
    """Error rates; with ``counts``, each interval's requests and errors too (a healthy
    canary at 0.5 %, as stable: what the promotion test is fed)."""
    if counts:
        return InMemoryProvider(
            {
                (Signal.ERROR_RATE_PERCENT, Version.STABLE): 0.5,
                (Signal.ERROR_RATE_PERCENT, Version.CANARY): 0.5,
                (Signal.REQUESTS, Version.CANARY): 200.0,
                (Signal.ERRORS, Version.CANARY): 1.0,
                (Signal.REQUESTS, Version.STABLE): 2000.0,
                (Signal.ERRORS, Version.STABLE): 10.0,
            }
        )
    return InMemoryProvider(
        {
            (Signal.ERROR_RATE_PERCENT, Version.STABLE): 0.5,
            (Signal.ERROR_RATE_PERCENT, Version.CANARY): 0.4 if healthy else 40.0,
        }
    )


def next_watch(
    action: str,
    state: Path,
    audit: AuditSink,
    *,
    healthy: bool,
    at: float,
    namespace: str | None = None,
) -> Watcher:
    """An in-process watch of ``shop`` (the ``action`` policy) over the deployment in
    ``state``, on a simulated clock from ``at``: the one that comes after a crash."""
    return Watcher(
        make_policy(action),
        provider=provider(healthy=healthy, counts=action == "progressive"),
        executor=FileExecutor(state),
        notifier=LogNotifier(),
        audit=audit,
        clock=SimulatedClock(at),
        namespace=namespace,
    )


async def main(state: Path, db: str, action: str, crash: str) -> int:
    kind, _, rest = crash.partition(":")
    target, _, count = rest.partition(":")
    audit_crash = (target, int(count)) if kind == "audit" else None
    exec_crash = (target, int(count)) if kind == "exec" else None
    healthy = action == "healthy"
    progressive = action == "progressive"
    policy = make_policy(action, interval="0.2s" if healthy else "5s")
    store = open_store(db)
    watcher = Watcher(
        policy,
        provider=provider(healthy=healthy or progressive, counts=progressive),
        executor=FileExecutor(state, crash_after=exec_crash),
        notifier=LogNotifier(),
        audit=CrashingStore(store, audit_crash),  # type: ignore[arg-type]
        clock=SystemClock() if healthy else SimulatedClock(1_795_000_000.0),
    )
    seconds = 3600 if progressive else 30 if healthy else 60
    result = await watcher.run(duration_seconds=seconds)
    print(json.dumps(result.as_dict()))
    return int(result.outcome.exit_code)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])))
