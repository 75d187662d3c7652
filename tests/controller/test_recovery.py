"""Recovery of watches that stopped without an action to finish."""

from __future__ import annotations

from pathlib import Path

from crash_watch import make_policy, provider
from file_executor import FileExecutor, read_state, write_state

from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from rollguard.controller import Outcome, SimulatedClock, Watcher
from rollguard.notifiers.log import LogNotifier


async def test_a_watch_that_stopped_while_healthy_is_closed_and_watching_goes_on(
    tmp_path: Path,
) -> None:
    state = tmp_path / "deployment.json"
    write_state(state, {"canary_weight": 20, "canary_state": "serving", "history": []})
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    store.append(
        AuditRecord(
            kind="deployment_start",
            deployment="shop",
            timestamp="2026-11-27T09:00:00Z",
            watch_id="stopped",
        )
    )
    watcher = Watcher(
        make_policy("immediate"),
        provider=provider(healthy=True),
        executor=FileExecutor(state),
        notifier=LogNotifier(),
        audit=store,
        clock=SimulatedClock(1_795_000_000.0),
    )
    result = await watcher.run(duration_seconds=30)
    assert result.outcome is Outcome.HEALTHY
    assert read_state(state)["history"] == []  # nothing was done to the deployment
    ends = {e.record.watch_id: e.record.outcome for e in store.list(kind="deployment_end")}
    assert ends == {"stopped": "interrupted", watcher.watch_id: "healthy"}
    assert store.list(kind="recovery") == []
    assert store.verify().ok
    store.close()
