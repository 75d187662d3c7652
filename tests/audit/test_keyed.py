"""The keyed chain, over SQLite and a real PostgreSQL: HMAC hashes, a trail keyed for
good from its first entry, and rewrites by someone without the key caught by verify."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from pathlib import Path

import pytest
from audit_helpers import (
    KEY_TEXT,
    StoreFactory,
    drop_triggers,
    key,
    raw_sql,
    record,
    rewrite_chain,
    stored_mark,
)

from rollguard.audit.base import AuditRecord
from rollguard.audit.chain import entry_hash, normalize_record
from rollguard.audit.export import as_dict
from rollguard.audit.keys import REDACTED, KeyMismatchError, key_from_env
from rollguard.audit.spool import SpooledStore
from rollguard.audit.sql import SqlAuditStore
from rollguard.errors import AuditError, ExitCode, UsageError

OTHER_KEY = "another-key-0123456789abcdef"


def _fill(store: SqlAuditStore, count: int = 6) -> None:
    for n in range(count):
        store.append(record(n))


def _state(store: SqlAuditStore) -> list[tuple[int, str]]:
    return [(entry.id, entry.hash) for entry in store.list(details=False)]


def test_the_key_id_is_an_hmac_of_a_fixed_text_and_the_key_never_shows() -> None:
    secret = key()
    expected = hmac.new(KEY_TEXT.encode(), b"rollguard audit key id", hashlib.sha256)
    assert secret.id == expected.hexdigest()[:16]
    assert KEY_TEXT not in repr(secret) + str(secret)
    assert secret.id in repr(secret)


def test_keyed_entries_are_hmac_sha256_and_verify_with_the_key(
    open_stores: StoreFactory, store_url: str
) -> None:
    store = open_stores(key())
    _fill(store, 3)
    entry = store.get(2)
    assert entry is not None
    assert entry.hash == entry_hash(2, entry.record, entry.prev_hash, key())
    assert entry.hash != entry_hash(2, entry.record, entry.prev_hash)
    assert stored_mark(store_url) == f"hmac-sha256:{key().id}"
    report = store.verify()
    assert (report.ok, report.entries, report.key_id) == (True, 3, key().id)


def test_an_unkeyed_trail_is_marked_and_verifies_as_before(
    open_stores: StoreFactory, store_url: str
) -> None:
    store = open_stores()
    _fill(store, 2)
    assert stored_mark(store_url) == "unkeyed"
    report = store.verify()
    assert (report.ok, report.key_id) == (True, None)


def test_verifying_a_keyed_trail_without_the_key_is_bad_input(open_stores: StoreFactory) -> None:
    _fill(open_stores(key()), 2)
    with pytest.raises(UsageError, match=f"is keyed \\(key id {key().id}\\)") as caught:
        open_stores().verify()
    assert caught.value.exit_code == ExitCode.INVALID
    assert "--key-env" in str(caught.value)


@pytest.mark.parametrize(
    ("first", "then", "message"),
    [
        (key(), None, "is keyed \\(key id [0-9a-f]{16}\\): appending needs its key"),
        (key(), key(OTHER_KEY), "keyed with key id [0-9a-f]{16}, but the key in \\$AUDIT_KEY"),
        (None, key(), "was started without a key, and a trail is keyed from its first entry on"),
    ],
    ids=["no-key", "other-key", "key-on-unkeyed"],
)
def test_an_append_whose_key_does_not_fit_is_refused_and_writes_nothing(
    open_stores: StoreFactory, first: object, then: object, message: str
) -> None:
    owner = open_stores(first)
    _fill(owner, 3)
    before = _state(owner)
    intruder = open_stores(then)
    with pytest.raises(KeyMismatchError, match=message) as caught:
        intruder.append(record(10))
    assert caught.value.exit_code == ExitCode.AUDIT_BROKEN
    assert isinstance(caught.value, AuditError)
    with pytest.raises(KeyMismatchError, match=message):
        intruder.check_key()
    assert KEY_TEXT not in str(caught.value)
    assert OTHER_KEY not in str(caught.value)
    assert _state(owner) == before
    assert owner.verify().ok


def test_the_first_entry_decides_even_between_two_openers(open_stores: StoreFactory) -> None:
    keyed, plain = open_stores(key()), open_stores()
    keyed.check_key()  # an empty trail takes either
    plain.check_key()
    keyed.append(record(0))
    with pytest.raises(KeyMismatchError):
        plain.append(record(1))
    assert [entry.id for entry in keyed.list()] == [1]


def test_a_chain_rewritten_with_plain_sha256_passes_unkeyed_verify_but_not_keyed(
    open_stores: StoreFactory, store_url: str
) -> None:
    _fill(open_stores(key()))
    drop_triggers(store_url)
    raw_sql(store_url, "UPDATE audit_entries SET outcome = 'failure' WHERE id = 3")
    # An attacker without the key: rehash every entry with SHA-256, fix the head, unmark.
    rewrite_chain(store_url, key=None, mark="unkeyed")
    fooled = open_stores().verify()
    assert (fooled.ok, fooled.entries) == (True, 6)
    caught = open_stores(key()).verify()
    assert (caught.ok, caught.problem, caught.entry_id) == (False, "modified", 1)
    assert caught.message.startswith("entry 1 was modified")
    assert "the store says the trail is unkeyed" in caught.message


def test_a_chain_rewritten_from_an_entry_with_another_key_is_caught_there(
    open_stores: StoreFactory, store_url: str
) -> None:
    _fill(open_stores(key()))
    drop_triggers(store_url)
    raw_sql(store_url, "UPDATE audit_entries SET affected_users = 0 WHERE id = 4")
    rewrite_chain(store_url, key=key(OTHER_KEY), from_id=4, mark=None)
    report = open_stores(key()).verify()
    assert (report.ok, report.problem, report.entry_id, report.entries) == (
        False,
        "modified",
        4,
        3,
    )
    assert "entry 4 was modified" in report.message


def test_a_chain_rekeyed_and_remarked_with_another_key_fails_with_the_right_key(
    open_stores: StoreFactory, store_url: str
) -> None:
    _fill(open_stores(key()), 3)
    drop_triggers(store_url)
    rewrite_chain(store_url, key=key(OTHER_KEY), mark=f"hmac-sha256:{key(OTHER_KEY).id}")
    report = open_stores(key()).verify()
    assert (report.ok, report.entry_id) == (False, 1)
    assert f"keyed with key id {key(OTHER_KEY).id}" in report.message


def test_removing_the_key_mark_alone_fails_keyed_verify(
    open_stores: StoreFactory, store_url: str
) -> None:
    _fill(open_stores(key()), 3)
    raw_sql(store_url, "DELETE FROM audit_meta WHERE key = 'chain_key'")
    report = open_stores(key()).verify()
    assert (report.ok, report.problem) == (False, "modified")
    assert report.message.startswith("the key mark was changed")


def test_a_database_from_before_keys_opens_and_appends_unchanged(
    open_stores: StoreFactory, store_url: str
) -> None:
    first = open_stores()
    _fill(first, 2)
    # What rollguard wrote before keyed chains existed: the same tables, no mark.
    raw_sql(store_url, "DELETE FROM audit_meta WHERE key = 'chain_key'")
    assert stored_mark(store_url) is None
    later = open_stores()
    later.check_key()
    assert later.append(record(2)) == 3
    assert stored_mark(store_url) is None  # an old trail is left as it was
    assert later.verify().ok
    with pytest.raises(KeyMismatchError, match="started without a key"):
        open_stores(key()).append(record(3))
    with pytest.raises(Exception, match="append-only"):
        raw_sql(store_url, "UPDATE audit_entries SET reason = 'x' WHERE id = 1")
    entry = later.get(3)
    assert entry is not None
    assert entry.record == normalize_record(record(2))


def test_an_unusable_key_variable_is_bad_input_without_echoing_the_value() -> None:
    with pytest.raises(UsageError, match="--key-env: environment variable AUDIT_KEY is not set"):
        key_from_env("AUDIT_KEY", field="--key-env", environ={})
    with pytest.raises(UsageError, match="shorter than 16 bytes") as caught:
        key_from_env("AUDIT_KEY", field="--key-env", environ={"AUDIT_KEY": "tiny-s3cret"})
    assert "tiny-s3cret" not in str(caught.value)
    for pasted in (
        "0f3a+9b/c2==",
        "a3c9e1f07b2d4c68a3c9e1f07b2d4c68",
        "A3C9E1F07B2D4C68A3C9E1F07B2D4C68",
    ):
        with pytest.raises(UsageError, match="never the key itself") as named:
            key_from_env(pasted, field="audit.key_env")
        assert pasted not in str(named.value)
        assert named.value.exit_code == ExitCode.INVALID


def test_the_key_text_in_a_record_is_redacted_before_it_is_stored_or_spooled(
    open_stores: StoreFactory, tmp_path: Path
) -> None:
    leaky = AuditRecord(
        kind="action_result",
        deployment="checkout",
        timestamp="2026-11-27T10:00:00Z",
        reason=f"command failed: AUDIT_KEY={KEY_TEXT}",
        executor_output={"stdout": f"AUDIT_KEY={KEY_TEXT}\n", KEY_TEXT: [KEY_TEXT, 1.5]},
    )
    store = open_stores(key())
    store.append(leaky)
    entry = store.get(1)
    assert entry is not None
    assert entry.record.reason == f"command failed: AUDIT_KEY={REDACTED}"
    assert entry.record.executor_output == {
        "stdout": f"AUDIT_KEY={REDACTED}\n",
        REDACTED: [REDACTED, 1.5],
    }
    assert KEY_TEXT not in json.dumps([as_dict(item) for item in store.list()])
    assert store.verify().ok
    spool = SpooledStore(store, spool=tmp_path / "spool.jsonl", redact=key().redact)
    spool._keep(leaky)  # as an outage would
    kept = (tmp_path / "spool.jsonl").read_text()
    assert KEY_TEXT not in kept
    assert REDACTED in kept


def test_racing_keyed_and_unkeyed_first_appends_leave_one_kind_of_trail(
    open_stores: StoreFactory, store_url: str
) -> None:
    secrets = [key(), None, key(), None]
    stores = [open_stores(secret) for secret in secrets]
    failures: list[BaseException] = []

    def work(store: SqlAuditStore, offset: int) -> None:
        try:
            for n in range(5):
                store.append(record(offset + n))
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(s, i * 10)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(failures) == 2
    assert all(isinstance(failure, KeyMismatchError) for failure in failures)
    winner = key() if stored_mark(store_url) == f"hmac-sha256:{key().id}" else None
    assert stored_mark(store_url) in (f"hmac-sha256:{key().id}", "unkeyed")
    report = open_stores(winner).verify()
    assert (report.ok, report.entries) == (True, 10), report.message
