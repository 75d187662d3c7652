"""Namespaced deployments in the trail: `cart` in `shop` and in `staging` are two, on every
backend, and entries written before namespaces were recorded still verify and list."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
import sqlalchemy as sa
from audit_helpers import StoreFactory, drop_triggers, raw_sql, record

from rollguard.audit import chain
from rollguard.audit import schema as s
from rollguard.audit.factory import open_store
from rollguard.server.audit_view import AuditView

#: The fields an entry's hash covered before namespaces were recorded, spelled out
#: here (not read from the code) so a change to how old entries hash shows.
OLD_FIELDS = (
    "kind",
    "deployment",
    "timestamp",
    "trigger",
    "reason",
    "severity",
    "action",
    "metrics",
    "outcome",
    "duration_seconds",
    "affected_users",
    "policy_digest",
    "evidence",
    "executor_output",
    "watch_id",
)


def old_hash(entry_id: int, row: dict[str, object], prev_hash: str) -> str:
    """The hash a rollguard from before namespaces gave an entry."""
    body = {"id": entry_id, "prev_hash": prev_hash, "record": {k: row[k] for k in OLD_FIELDS}}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_old_store(url: str, count: int) -> list[str]:
    """A store as a rollguard from before namespaces left it: no ``namespace`` column,
    append-only triggers, ``count`` bare-name entries of ``cart``; returns their hashes."""
    old = sa.MetaData()
    entries = sa.Table(
        "audit_entries",
        old,
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in s.entries.c
            if c.name != "namespace"
        ),
    )
    for table in (s.head, s.locks, s.meta):
        table.to_metadata(old)
    engine = sa.create_engine(url.replace("sqlite:///", "sqlite+pysqlite:///"))
    hashes: list[str] = []
    try:
        with engine.begin() as connection:
            old.create_all(connection)
            connection.execute(
                sa.insert(old.tables["audit_meta"]),
                [{"key": "format", "value": s.FORMAT}, {"key": "schema_version", "value": "1"}],
            )
            prev = chain.GENESIS
            for n in range(1, count + 1):
                row = {
                    key: value
                    for key, value in chain.record_columns(
                        chain.normalize_record(record(n, deployment="cart"))
                    ).items()
                    if key != "namespace"
                }
                digest = old_hash(n, row, prev)
                connection.execute(
                    sa.insert(entries).values(id=n, prev_hash=prev, hash=digest, **row)
                )
                hashes.append(digest)
                prev = digest
            connection.execute(
                sa.insert(old.tables["audit_head"]).values(id=1, last_id=count, last_hash=prev)
            )
    finally:
        engine.dispose()
    if url.startswith("sqlite"):
        raw_sql(
            url,
            "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
            "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
            "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
            "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
        )
    else:
        raw_sql(
            url,
            "CREATE FUNCTION rollguard_audit_append_only() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$",
            "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
            "FOR EACH ROW EXECUTE FUNCTION rollguard_audit_append_only()",
            "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
            "FOR EACH ROW EXECUTE FUNCTION rollguard_audit_append_only()",
        )
    return hashes


def has_namespace_column(url: str) -> bool:
    engine = sa.create_engine(url.replace("sqlite:///", "sqlite+pysqlite:///"))
    try:
        with engine.connect() as connection:
            names = {c["name"] for c in sa.inspect(connection).get_columns("audit_entries")}
    finally:
        engine.dispose()
    return "namespace" in names


def test_same_name_in_two_namespaces_is_two_deployments(open_stores: StoreFactory) -> None:
    store = open_stores()
    shop = store.append(replace(record(1, deployment="cart"), namespace="shop"))
    staging = store.append(replace(record(2, deployment="cart"), namespace="staging"))
    bare = store.append(record(3, deployment="cart"))  # a watch that names no namespace
    store.append(replace(record(4, deployment="search"), namespace="shop"))

    def ids(**filters: str) -> list[int]:
        return [entry.id for entry in store.list(**filters)]

    assert ids(deployment="cart") == [shop, staging, bare]  # the name, everywhere
    assert ids(deployment="cart", namespace="shop") == [shop]
    assert ids(deployment="cart", namespace="staging") == [staging]
    assert ids(namespace="shop") == [shop, shop + 3]
    assert ids(deployment="cart", namespace="prod") == []
    assert [e.record.namespace for e in store.list(deployment="cart")] == ["shop", "staging", ""]
    again = store.get(shop)
    assert again is not None
    assert again.record.namespace == "shop"
    # the namespace is in the hash: the same entry without it hashes differently
    without = chain.entry_hash(shop, replace(again.record, namespace=""), again.prev_hash)
    assert without != again.hash
    assert chain.entry_hash(shop, again.record, again.prev_hash) == again.hash
    report = store.verify()
    assert report.ok, report.message
    assert report.entries == 4


@pytest.mark.parametrize(("entry_id", "namespace"), [(1, "staging"), (2, ""), (3, "shop")])
def test_a_rewritten_namespace_breaks_the_chain(
    store_url: str, open_stores: StoreFactory, entry_id: int, namespace: str
) -> None:
    """Moving an entry to another namespace, or out of one, or giving a bare entry one."""
    store = open_stores()
    store.append(replace(record(1), namespace="shop"))
    store.append(replace(record(2), namespace="shop"))
    store.append(record(3))
    drop_triggers(store_url)
    raw_sql(store_url, f"UPDATE audit_entries SET namespace = '{namespace}' WHERE id = {entry_id}")
    report = store.verify()
    assert not report.ok
    assert (report.entry_id, report.problem) == (entry_id, "modified")


def test_an_old_store_reads_unchanged_and_upgrades_on_write(store_url: str) -> None:
    hashes = make_old_store(store_url, 2)

    reader = open_store(store_url, create=False)  # audit list / verify / report
    try:
        assert [e.hash for e in reader.list(deployment="cart")] == hashes
        assert {e.record.namespace for e in reader.list()} == {""}
        assert reader.list(deployment="cart", namespace="shop") == []
        report = reader.verify()
        assert (report.ok, report.entries, report.head_hash) == (True, 2, hashes[-1])
    finally:
        reader.close()
    assert not has_namespace_column(store_url)  # a reader never changes the store

    writer = open_store(store_url)  # a watch
    try:
        assert has_namespace_column(store_url)
        first = writer.append(replace(record(3, deployment="cart"), namespace="shop"))
        writer.append(replace(record(4, deployment="cart"), namespace="staging"))
        report = writer.verify()
        assert (report.ok, report.entries) == (True, 4), report.message
        listed = writer.list(deployment="cart")
        assert [e.hash for e in listed[:2]] == hashes  # old entries: the hashes they had
        assert [e.record.namespace for e in listed] == ["", "", "shop", "staging"]
        assert [e.id for e in writer.list(deployment="cart", namespace="shop")] == [first]
    finally:
        writer.close()


async def test_serves_audit_view_keeps_one_namespace(open_stores: StoreFactory) -> None:
    """What `GET /api/v1/audit?namespace=` reads: the store, or memory without one."""
    for view in (AuditView(open_stores()), AuditView()):
        try:
            for entry_id, namespace in enumerate(("shop", "staging", ""), start=1):
                view.append(replace(record(entry_id, deployment="cart"), namespace=namespace))
            shop = await view.entries(deployment="cart", namespace="shop")
            everywhere = await view.entries(deployment="cart")
        finally:
            view.close()
        assert [entry["namespace"] for entry in shop] == ["shop"], view.backend
        assert [entry["namespace"] for entry in everywhere] == ["", "staging", "shop"]
