"""Watches of `shop` in two namespaces (as `rollguard controller` runs them) write two
deployments' entries: listed, reported and recovered apart, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from crash_watch import next_watch
from file_executor import read_state, write_state

from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from rollguard.controller import Outcome
from rollguard.reports.build import build
from servers.postgres import PostgresServer, postgres_server

__all__ = ["postgres_server"]

_schemas = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_schema(f"namespaced_{next(_schemas)}")


async def test_two_namespaces_roll_back_into_separate_entries(
    tmp_path: Path, store_url: str
) -> None:
    store = open_store(store_url)
    try:
        # a watch recorded before namespaces were: found by the bare name, in no namespace
        legacy = {"deployment": "shop", "timestamp": "2026-11-27T08:00:00Z", "watch_id": "old"}
        store.append(AuditRecord(kind="deployment_start", **legacy))
        store.append(AuditRecord(kind="deployment_end", outcome="healthy", **legacy))
        watch_ids = {}
        for namespace in ("team-a", "team-b"):
            state = tmp_path / f"{namespace}.json"
            write_state(state, {"canary_weight": 20, "canary_state": "serving", "history": []})
            watcher = next_watch(
                "immediate", state, store, healthy=False, at=1_795_000_000.0, namespace=namespace
            )
            assert (await watcher.run(duration_seconds=60)).outcome is Outcome.ROLLED_BACK
            assert read_state(state)["history"] != []
            watch_ids[namespace] = watcher.watch_id

        for namespace, watch_id in watch_ids.items():
            own = store.list(deployment="shop", namespace=namespace)
            assert {e.record.watch_id for e in own} == {watch_id}
            assert {e.record.namespace for e in own} == {namespace}
            kinds = [e.record.kind for e in own]
            assert kinds[0] == "deployment_start"
            assert kinds[-1] == "deployment_end"
            assert "action_result" in kinds
        everything = store.list(deployment="shop")
        assert {e.record.watch_id for e in everything} == {"old", *watch_ids.values()}
        assert [e.record.namespace for e in everything[:2]] == ["", ""]

        report_a = build(store, since="2026-01-01T00:00:00Z", deployment="shop", namespace="team-a")
        assert report_a.total_deployments == 1
        assert [event.target for event in report_a.events] == ["team-a/shop"]
        whole = build(store, since="2026-01-01T00:00:00Z")
        assert whole.total_deployments == 3
        assert sorted(event.target for event in whole.events) == ["team-a/shop", "team-b/shop"]
        assert whole.verify.ok
        assert whole.verify.entries == len(store.list())
    finally:
        store.close()
