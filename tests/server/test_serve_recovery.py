"""``serve`` restarted after a kill finishes the rollback the killed one left half-done,
and waits for a deployment whose lease another controller still holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

from serve_harness import start_serve, write_policies

from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from support import wait_until

KILLED = "killed-serve-watch"


def _interrupted_rollback(url: str, deployment: str) -> None:
    """What a serve killed between its intent and the executor's answer leaves behind."""
    store = open_store(url)
    common = {"deployment": deployment, "timestamp": "2026-11-27T09:00:00Z", "watch_id": KILLED}
    store.append(AuditRecord(kind="deployment_start", **common))
    store.append(
        AuditRecord(
            kind="decision", action="immediate_rollback", trigger="error_rate_trigger", **common
        )
    )
    store.append(
        AuditRecord(
            kind="action_intent",
            action="immediate_rollback",
            trigger="error_rate_trigger",
            **common,
        )
    )
    store.close()


def test_a_restarted_serve_finishes_the_rollback_a_killed_one_left(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    write_policies(folder)
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _interrupted_rollback(url, "cart")  # cart's recording is healthy: only recovery rolls back
    store = open_store(url)
    try:
        with start_serve(folder, store=store) as served:
            served.wait_status("cart", "rolled_back")
            executor = served.manager.get("cart").watcher.executor  # type: ignore[union-attr]
            assert asyncio.run(executor.status()).canary_state == "retired"
        killed = [
            e.record.kind for e in store.list(deployment="cart") if e.record.watch_id == KILLED
        ]
        assert killed[-2:] == ["action_result", "deployment_end"]
        assert len(store.list(deployment="cart", kind="recovery")) == 1
        assert store.verify().ok
    finally:
        store.close()


def test_serve_waits_while_another_controller_holds_the_lease(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    write_policies(folder)
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    store.acquire_lock("cart", owner="elsewhere", lease_seconds=3600)
    try:
        with start_serve(folder, store=store, lock_retry_seconds=0.1) as served:
            waiting = served.wait_status("cart", "starting")
            assert "waiting for the deployment's lock" in str(waiting)
            assert not store.list(deployment="cart")  # nothing recorded while it waits
            store.release_lock("cart", owner="elsewhere")
            served.wait_status("cart", "watching")
            holder = wait_until(lambda: store.lock_holder("cart"), timeout=10, what="a lease")
            assert holder.owner != "elsewhere"
    finally:
        store.close()
