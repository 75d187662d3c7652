"""A database outage during a watch: entries wait in a local spool and arrive in order."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from audit_helpers import record

from rollguard.audit.factory import open_store
from rollguard.audit.spool import SPOOLED, SpooledStore
from rollguard.errors import AuditError
from servers.postgres import running_postgres


def test_entries_written_while_postgresql_is_down_are_flushed_in_order(tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    with running_postgres() as server:
        store = SpooledStore(open_store(server.url(), connect_timeout_seconds=2), spool=spool)
        try:
            assert store.append(record(0)) == 1
            server.stop()
            assert store.append(record(1)) == SPOOLED  # no exception: the watch goes on
            assert store.append(record(2)) == SPOOLED
            assert len(spool.read_text().splitlines()) == 2
            assert [r.reason for r in store.pending()] == [record(1).reason, record(2).reason]
            server.start()
            assert store.append(record(3)) == 4
            assert not spool.exists()
            reasons = [entry.record.reason for entry in store.list()]
            assert reasons == [record(n).reason for n in range(4)]
            assert store.verify().ok
        finally:
            store.close()


def test_a_damaged_spool_is_named_with_its_line(tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    spool.write_text(
        '{"kind": "decision", "deployment": "d", "timestamp": "2026-11-27T00:00:00Z"}\n{oops\n'
    )
    store = SpooledStore(open_store(f"sqlite:///{tmp_path / 'a.db'}"), spool=spool)
    try:
        with pytest.raises(AuditError, match=r"spool.jsonl:2: not a spooled audit record"):
            store.flush()
    finally:
        store.close()


def test_watchers_sharing_a_spool_flush_each_record_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    url = f"sqlite:///{tmp_path / 'a.db'}"
    stores = [SpooledStore(open_store(url), spool=spool) for _ in range(3)]
    try:
        for n in range(20):
            stores[0]._keep(record(n))  # as an outage would have left them
        threads = [threading.Thread(target=store.flush) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        reasons = [entry.record.reason for entry in stores[0].list()]
        assert reasons == [record(n).reason for n in range(20)]
        assert not spool.exists()
    finally:
        for store in stores:
            store.close()
