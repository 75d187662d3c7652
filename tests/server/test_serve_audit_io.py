"""A slow audit store must not stall ``serve``: writes run off the event loop, in order,
and an action still waits until its intent is durable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import httpx
from serve_harness import start_serve, write_policies

from rollguard.audit.base import AuditEntry, AuditRecord
from rollguard.audit.factory import open_store
from rollguard.audit.sql import SqlAuditStore
from rollguard.executors.base import Executor
from rollguard.server.audit_view import AuditView
from support import wait_until


class HeldStore:
    """A real SQLite store whose append of one kind waits until the test releases it."""

    def __init__(self, inner: SqlAuditStore, *, hold: str) -> None:
        self.inner = inner
        self.hold = hold
        self.entered = threading.Event()
        self.release = threading.Event()

    def append(self, record: AuditRecord) -> int:
        if record.kind == self.hold:
            self.entered.set()
            self.release.wait(timeout=60)  # bounded, so a failing test still ends
        return self.inner.append(record)

    def list(
        self,
        *,
        since: str | None = None,
        deployment: str | None = None,
        kind: str | None = None,
        newest: int | None = None,
        namespace: str | None = None,
    ) -> Sequence[AuditEntry]:
        return self.inner.list(
            since=since, deployment=deployment, kind=kind, newest=newest, namespace=namespace
        )


def test_api_answers_while_an_audit_write_hangs_and_entries_land_in_order(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    write_policies(folder)
    inner = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    store = HeldStore(inner, hold="action_intent")
    try:
        with start_serve(folder, store=store) as served:
            try:
                wait_until(store.entered.is_set, timeout=20, what="shop's intent to be written")
                # The event loop is free: reads answer well within the client's deadline.
                with httpx.Client(base_url=served.url, timeout=3) as quick:
                    assert quick.get("/healthz").status_code == 200
                    shop = quick.get("/api/v1/deployments/shop").json()
                    assert quick.get("/api/v1/deployments").status_code == 200
                assert shop["status"] == "acting"
                # Crash safety: the rollback has not begun while its intent is not durable.
                executor: Executor = served.manager.get("shop").watcher.executor  # type: ignore[union-attr]
                assert asyncio.run(executor.status()).canary_state == "serving"
            finally:
                store.release.set()
            served.wait_status("shop", "rolled_back")
        entries = inner.list(deployment="shop")
        kinds = [entry.record.kind for entry in entries]
        assert [entry.id for entry in entries] == sorted(entry.id for entry in entries)
        assert kinds[0] == "deployment_start"
        assert kinds[-1] == "deployment_end"
        assert kinds.index("decision") < kinds.index("action_intent") < kinds.index("action_step")
        assert kinds.index("action_step") < kinds.index("action_result")
        assert inner.verify().ok
    finally:
        inner.close()


def test_queued_writes_keep_their_order_and_survive_a_cancelled_writer(tmp_path: Path) -> None:
    inner = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    store = HeldStore(inner, hold="deployment_start")
    view = AuditView(store)

    def record(kind: str, deployment: str) -> AuditRecord:
        return AuditRecord(kind=kind, deployment=deployment, timestamp="2026-01-01T00:00:00Z")

    async def write() -> None:
        first = asyncio.create_task(view.append_async(record("deployment_start", "a")))
        await asyncio.to_thread(store.entered.wait, 20)
        queued = [
            asyncio.create_task(view.append_async(record(kind, deployment)))
            for kind, deployment in (("decision", "a"), ("decision", "b"), ("action_intent", "a"))
        ]
        await asyncio.sleep(0)  # one turn of the loop: each new task hands its record over
        queued[1].cancel()  # its watcher stops: the record it handed over is still written
        store.release.set()
        assert await first == 1
        assert [await queued[0], await queued[2]] == [2, 4]

    try:
        asyncio.run(write())
        view.close()  # waits for queued writes
        written = [(e.record.kind, e.record.deployment) for e in inner.list()]
        assert written == [
            ("deployment_start", "a"),
            ("decision", "a"),
            ("decision", "b"),
            ("action_intent", "a"),
        ]
        assert [entry["id"] for entry in view.recent()] == [4, 3, 2, 1]
    finally:
        inner.close()
