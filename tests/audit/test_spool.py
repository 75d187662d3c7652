"""A database outage during a watch: entries wait in a local spool and arrive in order."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from audit_helpers import KEY_TEXT, key, record

from rollguard.audit.chain import entry_hash
from rollguard.audit.factory import open_policy_store, open_store
from rollguard.audit.keys import AuditKey, KeyMismatchError
from rollguard.audit.spool import SPOOLED, SpooledStore
from rollguard.errors import AuditError, UsageError
from rollguard.policy.model import AuditConfig
from servers.postgres import running_postgres


@pytest.mark.parametrize("secret", [None, key()], ids=["unkeyed", "keyed"])
def test_entries_written_while_postgresql_is_down_are_flushed_in_order(
    tmp_path: Path, secret: AuditKey | None
) -> None:
    spool = tmp_path / "spool.jsonl"
    with running_postgres() as server:
        opened = open_store(server.url(), connect_timeout_seconds=2, key=secret)
        store = SpooledStore(opened, spool=spool)
        try:
            assert store.append(record(0)) == 1
            server.stop()
            assert store.append(record(1)) == SPOOLED  # no exception: the watch goes on
            assert store.append(record(2)) == SPOOLED
            assert len(spool.read_text().splitlines()) == 2
            assert [r.reason for r in store.pending()] == [record(1).reason, record(2).reason]
            assert KEY_TEXT not in spool.read_text()
            server.start()
            assert store.append(record(3)) == 4
            assert not spool.exists()
            reasons = [entry.record.reason for entry in store.list()]
            assert reasons == [record(n).reason for n in range(4)]
            # Spooled entries are hashed when they reach the store: with the key, if any.
            assert all(
                entry.hash == entry_hash(entry.id, entry.record, entry.prev_hash, secret)
                for entry in store.list()
            )
            report = store.verify()
            assert (report.ok, report.key_id) == (True, secret.id if secret else None)
        finally:
            store.close()


def test_an_entry_whose_key_does_not_fit_is_refused_not_spooled(tmp_path: Path) -> None:
    url, spool = f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "spool.jsonl"
    keyed = open_store(url, key=key())
    keyed.append(record(0))
    store = SpooledStore(open_store(url), spool=spool)
    try:
        with pytest.raises(KeyMismatchError, match="appending needs its key"):
            store.append(record(1))
        assert not spool.exists()
        assert [entry.id for entry in keyed.list()] == [1]
    finally:
        store.close()
        keyed.close()


def test_a_policy_store_with_a_wrong_or_missing_key_stops_before_flushing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = AuditConfig(key_env="AUDIT_KEY")
    monkeypatch.setenv("AUDIT_KEY", KEY_TEXT)
    first = open_policy_store(config, base_dir=tmp_path)
    first.append(record(0))
    first._keep(record(1))  # as an outage would have left it
    first.close()
    monkeypatch.delenv("AUDIT_KEY")
    with pytest.raises(UsageError, match=r"audit\.key_env: environment variable AUDIT_KEY is not"):
        open_policy_store(config, base_dir=tmp_path)
    monkeypatch.setenv("AUDIT_KEY", "a-different-key-of-enough-length")
    with pytest.raises(KeyMismatchError, match="use the trail's key") as caught:
        open_policy_store(config, base_dir=tmp_path)
    assert "a-different-key" not in str(caught.value)
    with pytest.raises(KeyMismatchError, match="appending needs its key"):
        open_policy_store(AuditConfig(), base_dir=tmp_path)
    monkeypatch.setenv("AUDIT_KEY", KEY_TEXT)
    store = open_policy_store(config, base_dir=tmp_path)  # the right key flushes the spool
    try:
        assert [entry.record.reason for entry in store.list()] == [
            record(0).reason,
            record(1).reason,
        ]
        assert store.verify().ok
    finally:
        store.close()


def test_a_damaged_spool_is_named_with_its_line(tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    store = SpooledStore(open_store(f"sqlite:///{tmp_path / 'a.db'}"), spool=spool)
    try:
        store._keep(record(0))
        with spool.open("a") as handle:
            handle.write("{oops\n")
        with pytest.raises(AuditError, match=r"spool.jsonl:2: line 2 is not a chained spool entry"):
            store.pending()
        assert store.flush() == 1  # the entry before the damage; the rest is set aside
        [first, notice] = store.list()
        assert first.record.reason == record(0).reason
        assert notice.record.kind == "spool_refused"
        assert notice.record.reason.startswith(f"{spool}:2: line 2 is not a chained spool entry")
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
