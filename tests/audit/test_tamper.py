"""Tampering with the rows behind rollguard's back: verify names the first damaged entry.

Each test drops the append-only triggers with raw SQL first, as someone with
database access would have to.
"""

from __future__ import annotations

from audit_helpers import drop_triggers, raw_sql, record

from rollguard.audit.base import AuditRecord
from rollguard.audit.chain import entry_hash, normalize_record
from rollguard.audit.sql import SqlAuditStore


def _fill(store: SqlAuditStore, count: int = 8) -> None:
    for n in range(count):
        store.append(record(n))
    assert store.verify().ok


def test_a_modified_entry_is_named(store: SqlAuditStore, store_url: str) -> None:
    _fill(store)
    drop_triggers(store_url)
    raw_sql(store_url, "UPDATE audit_entries SET outcome = 'failure' WHERE id = 5")
    report = store.verify()
    assert (report.ok, report.problem, report.entry_id) == (False, "modified", 5)
    assert "entry 5 was modified" in report.message
    assert report.entries == 4


def test_a_modified_and_rehashed_entry_is_still_caught(
    store: SqlAuditStore, store_url: str
) -> None:
    _fill(store)
    original = store.get(3)
    assert original is not None
    forged = AuditRecord(**{**original.record.__dict__, "affected_users": 0})
    new_hash = entry_hash(3, normalize_record(forged), original.prev_hash)
    drop_triggers(store_url)
    raw_sql(
        store_url, f"UPDATE audit_entries SET affected_users = 0, hash = '{new_hash}' WHERE id = 3"
    )
    report = store.verify()
    assert (report.problem, report.entry_id) == ("modified", 3)


def test_a_deleted_entry_is_named(store: SqlAuditStore, store_url: str) -> None:
    _fill(store)
    drop_triggers(store_url)
    raw_sql(store_url, "DELETE FROM audit_entries WHERE id = 4")
    report = store.verify()
    assert (report.ok, report.problem, report.entry_id) == (False, "deleted", 5)
    assert "entry 4 was deleted between entry 3 and entry 5" in report.message


def test_deleting_the_last_entries_is_caught_by_the_head(
    store: SqlAuditStore, store_url: str
) -> None:
    _fill(store)
    drop_triggers(store_url)
    raw_sql(store_url, "DELETE FROM audit_entries WHERE id >= 7")
    report = store.verify()
    assert (report.problem, report.entry_id) == ("deleted", 7)
    assert "entries 7-8 were deleted from the end" in report.message


def test_an_inserted_entry_in_the_middle_is_named(store: SqlAuditStore, store_url: str) -> None:
    _fill(store)
    drop_triggers(store_url)
    before = store.get(2)
    assert before is not None
    fake = normalize_record(record(99))
    digest = entry_hash(3, fake, before.hash)  # a well-forged link to entry 2
    columns = (
        "kind, deployment, watch_id, timestamp, trigger, reason, severity, action, metrics, "
        "outcome, duration_seconds, affected_users, policy_digest, evidence, executor_output"
    )
    raw_sql(
        store_url,
        "UPDATE audit_entries SET id = id + 1000 WHERE id >= 3",
        "UPDATE audit_entries SET id = id - 999 WHERE id >= 1000",
        f"INSERT INTO audit_entries (id, {columns}, prev_hash, hash) "
        f"SELECT 3, {columns}, '{before.hash}', '{digest}' FROM audit_entries WHERE id = 1",
        "UPDATE audit_head SET last_id = last_id + 1",
    )
    # The inserted row copies entry 1's columns, so re-hash what actually landed.
    landed = store.get(3)
    assert landed is not None
    raw_sql(
        store_url,
        f"UPDATE audit_entries SET hash = '{entry_hash(3, landed.record, before.hash)}' "
        "WHERE id = 3",
    )
    report = store.verify()
    assert (report.ok, report.problem, report.entry_id) == (False, "inserted", 3)


def test_an_entry_appended_outside_rollguard_is_named(store: SqlAuditStore, store_url: str) -> None:
    _fill(store, 3)
    last = store.get(3)
    assert last is not None
    fake = normalize_record(record(50))
    digest = entry_hash(4, fake, last.hash)
    raw_sql(
        store_url,
        "INSERT INTO audit_entries SELECT 4, kind, deployment, watch_id, timestamp, trigger, "
        "reason, severity, action, metrics, outcome, duration_seconds, affected_users, "
        f"policy_digest, evidence, executor_output, '{last.hash}', '{digest}', namespace "
        "FROM audit_entries WHERE id = 3",
    )
    report = store.verify()
    assert (report.problem, report.entry_id) == ("inserted", 4)
    assert "outside rollguard" in report.message


def test_swapped_entries_are_reported_as_reordered(store: SqlAuditStore, store_url: str) -> None:
    _fill(store)
    drop_triggers(store_url)
    raw_sql(
        store_url,
        "UPDATE audit_entries SET id = 1000 WHERE id = 5",
        "UPDATE audit_entries SET id = 5 WHERE id = 6",
        "UPDATE audit_entries SET id = 6 WHERE id = 1000",
    )
    report = store.verify()
    assert (report.ok, report.problem, report.entry_id) == (False, "reordered", 5)
    assert "out of order" in report.message


def test_a_mangled_json_column_is_a_modification_not_a_crash(
    store: SqlAuditStore, store_url: str
) -> None:
    _fill(store, 3)
    drop_triggers(store_url)
    raw_sql(store_url, "UPDATE audit_entries SET evidence = '{not json' WHERE id = 2")
    report = store.verify()
    assert (report.problem, report.entry_id) == ("modified", 2)
