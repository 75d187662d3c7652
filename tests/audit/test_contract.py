"""The store contract, run over SQLite and a real PostgreSQL."""

from __future__ import annotations

import io
import json
import threading

import pytest
from audit_helpers import StoreFactory, key, raw_sql, record

from rollguard.audit.base import AuditRecord
from rollguard.audit.chain import GENESIS, entry_hash, normalize_record
from rollguard.audit.factory import open_store
from rollguard.audit.sql import SqlAuditStore
from rollguard.errors import AuditError
from servers.postgres import PostgresServer


def test_append_returns_consecutive_ids_and_reads_back_exactly(store: SqlAuditStore) -> None:
    ids = [store.append(record(n)) for n in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    entry = store.get(3)
    assert entry is not None
    assert entry.record == normalize_record(record(2))
    assert entry.record.timestamp == "2026-11-03T10:02:00.000000Z"
    assert entry.record.metrics == {"errorRate": 5.2, "latency": 120.5, "memoryUsage": 300.25}
    assert entry.hash == entry_hash(3, entry.record, entry.prev_hash)
    assert store.get(99) is None


def test_entries_form_a_chain_from_genesis(store: SqlAuditStore) -> None:
    for n in range(4):
        store.append(record(n))
    entries = store.list()
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert len({e.hash for e in entries}) == 4


def test_list_filters_by_time_deployment_and_kind(store: SqlAuditStore) -> None:
    store.append(record(0, deployment="checkout", kind="deployment_start"))
    store.append(record(10, deployment="search"))
    store.append(record(20, deployment="checkout"))
    assert [e.id for e in store.list(deployment="checkout")] == [1, 3]
    assert [e.id for e in store.list(since="2026-11-11T00:00:00Z")] == [2, 3]
    assert [e.id for e in store.list(since="2026-11-11T02:00:00+02:00")] == [2, 3]
    assert [e.id for e in store.list(kind="deployment_start")] == [1]


def test_list_newest_keeps_the_last_matches_in_chain_order(store: SqlAuditStore) -> None:
    for n in range(6):
        store.append(record(n, deployment="a" if n % 2 else "b"))
    assert [e.id for e in store.list(newest=2)] == [5, 6]
    assert [e.id for e in store.list(deployment="a", newest=2)] == [4, 6]
    assert [e.id for e in store.list(deployment="b", newest=10)] == [1, 3, 5]


def test_nan_metrics_are_stored_as_null_and_still_verify(store: SqlAuditStore) -> None:
    nan_record = AuditRecord(
        kind="decision",
        deployment="checkout",
        timestamp="2026-11-27T09:00:00Z",
        metrics={"errorRate": float("nan"), "latency": None, "memoryUsage": 12.0},
    )
    store.append(nan_record)
    entry = store.get(1)
    assert entry is not None
    assert entry.record.metrics == {"errorRate": None, "latency": None, "memoryUsage": 12.0}
    assert store.verify().ok


def test_a_bad_timestamp_is_refused(store: SqlAuditStore) -> None:
    bad = AuditRecord(kind="decision", deployment="d", timestamp="yesterday")
    with pytest.raises(AuditError, match="not RFC 3339"):
        store.append(bad)
    assert store.list() == []


def test_verify_passes_on_an_intact_and_on_an_empty_store(store: SqlAuditStore) -> None:
    empty = store.verify()
    assert (empty.ok, empty.entries, empty.head_hash) == (True, 0, GENESIS)
    for n in range(7):
        store.append(record(n))
    report = store.verify()
    assert report.ok, report.message
    assert report.entries == 7
    assert report.head_hash == store.list()[-1].hash


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET reason = 'nothing happened' WHERE id = 1",
        "DELETE FROM audit_entries WHERE id = 1",
    ],
)
def test_the_database_refuses_update_and_delete(
    store: SqlAuditStore, store_url: str, statement: str
) -> None:
    store.append(record(0))
    with pytest.raises(Exception, match="append-only"):
        raw_sql(store_url, statement)
    entry = store.get(1)
    assert entry is not None
    assert entry.record.reason == record(0).reason
    assert store.verify().ok


def test_postgresql_refuses_truncate(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_schema("audit_truncate")
    store = open_store(url)
    try:
        store.append(record(0))
        with pytest.raises(Exception, match="append-only"):
            raw_sql(url, "TRUNCATE audit_entries")
        assert [entry.id for entry in store.list()] == [1]
        assert store.verify().ok
    finally:
        store.close()


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_concurrent_appenders_never_fork_the_chain(open_stores: StoreFactory, keyed: bool) -> None:
    stores = [open_stores(key() if keyed else None) for _ in range(4)]
    errors: list[BaseException] = []

    def work(store: SqlAuditStore, offset: int) -> None:
        try:
            for n in range(15):
                store.append(record(offset + n))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, i * 100)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    entries = stores[0].list()
    assert [e.id for e in entries] == list(range(1, 61))
    report = stores[0].verify()
    assert report.ok, report.message
    assert report.entries == 60
    assert report.key_id == (key().id if keyed else None)


def test_export_json_and_csv_carry_the_seed_fields(store: SqlAuditStore) -> None:
    for n in range(3):
        store.append(record(n))
    out = io.StringIO()
    assert store.export(out, format="json") == 3
    rows = json.loads(out.getvalue())
    assert rows[1]["metrics"] == {"errorRate": 5.1, "latency": 120.5, "memoryUsage": 300.25}
    assert rows[1]["affectedUsers"] == 41
    assert rows[1]["duration"] == 2.5
    assert rows[2]["prevHash"] == rows[1]["hash"]
    out = io.StringIO()
    assert store.export(out, format="csv", deployment="checkout") == 3
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("id,timestamp,kind,deployment,trigger")
    assert len(lines) == 4
    assert ",5.1,120.5,300.25," in lines[2]
