"""Audit store benchmarks: append throughput, verify time, report generation.

    python bench/audit.py [--quick]

Prints a table:

- append throughput (entries/s), one durable transaction per entry, as the
  watcher appends: SQLite (WAL, synchronous=FULL) and a real PostgreSQL 15
  (fsync on, started on loopback like the tests do; skipped without it);
- ``verify`` over 100,000 entries (the chain is bulk-loaded first with the
  same hash function, since appending 100,000 fsynced entries one by one only
  measures the disk), on SQLite also for a keyed (HMAC-SHA256) chain, and
  appends to a keyed SQLite trail;
- ``rollguard report`` computation and rendering (Markdown and HTML) over
  10,000 deployments (about 26,000 entries, 30 % rolled back).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import sqlalchemy as sa  # noqa: E402

from rollguard.audit import chain, keys, schema  # noqa: E402
from rollguard.audit.base import AuditRecord  # noqa: E402
from rollguard.audit.factory import open_store  # noqa: E402
from rollguard.audit.sql import SqlAuditStore  # noqa: E402
from rollguard.reports.build import build, render_report  # noqa: E402

QUICK = "--quick" in sys.argv
START = datetime(2026, 11, 1, tzinfo=UTC)


def record(
    n: int, *, kind: str = "decision", watch: str = "w", at: datetime | None = None
) -> AuditRecord:
    return AuditRecord(
        kind=kind,
        deployment=f"svc-{n % 50}",
        timestamp=(at or START + timedelta(seconds=n)).isoformat(),
        trigger="error_rate_trigger",
        reason="error_rate_exceeded (7.5% > 5%)",
        severity="critical",
        action="immediate_rollback",
        metrics={"errorRate": 7.5, "latency": 180.0, "memoryUsage": 300.0},
        outcome="success",
        duration_seconds=2.5,
        affected_users=120,
        policy_digest="ab" * 32,
        evidence={"evidence": [{"trigger": "error_rate_trigger", "value": 7.5, "limit": 5.0}]},
        executor_output={"steps": [{"step": "rollback", "ok": True}]},
        watch_id=watch,
    )


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def append_rate(store: SqlAuditStore, count: int) -> float:
    seconds = timed(lambda: [store.append(record(n)) for n in range(count)])
    return count / seconds


BENCH_KEY = keys.key_from_env("K", field="bench", environ={"K": "bench-key-0123456789abcdef"})


def bulk_load(url: str, records: Iterator[AuditRecord], key: keys.AuditKey | None = None) -> int:
    """Write a valid chain in one transaction (bench set-up only; rollguard never does this)."""
    store = open_store(url)
    store.close()
    engine = sa.create_engine(url.replace("sqlite:///", "sqlite+pysqlite:///"))
    prev, rows, entry_id = chain.GENESIS, [], 0
    for entry_id, raw in enumerate(records, start=1):
        clean = chain.normalize_record(raw)
        digest = chain.entry_hash(entry_id, clean, prev, key)
        rows.append(
            {"id": entry_id, **chain.record_columns(clean), "prev_hash": prev, "hash": digest}
        )
        prev = digest
    with engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(sa.insert(schema.entries), rows[start : start + 5000])
        connection.execute(sa.insert(schema.head).values(id=1, last_id=entry_id, last_hash=prev))
        connection.execute(sa.insert(schema.meta).values(key=keys.MARK_KEY, value=keys.mark(key)))
    engine.dispose()
    return entry_id


def deployments(count: int) -> Iterator[AuditRecord]:
    """Whole watches: healthy ones (start, end) and rolled-back ones (six entries)."""
    for n in range(count):
        started = START + timedelta(minutes=4 * n)
        watch = f"w{n}"
        yield record(n, kind="deployment_start", watch=watch, at=started)
        if n % 10 < 3:
            decided = started + timedelta(seconds=30 + n % 90)
            for kind in ("decision", "action_intent", "action_step", "action_result"):
                yield record(n, kind=kind, watch=watch, at=decided + timedelta(seconds=5))
        yield record(n, kind="deployment_end", watch=watch, at=started + timedelta(minutes=3))


def sqlite_verify(folder: Path, total: int) -> list[tuple[str, str]]:
    """Verify time over ``total`` bulk-loaded entries, plain SHA-256 and keyed."""
    rows = []
    for key in (None, BENCH_KEY):
        label = ", keyed" if key else ""
        url = f"sqlite:///{folder / ('verify-keyed.db' if key else 'verify.db')}"
        bulk_load(url, (record(n, watch=f"w{n}") for n in range(total)), key)
        store = open_store(url, key=key)
        verified = store.verify()
        assert verified.ok, verified.message
        assert verified.key_id == (key.id if key else None)
        seconds = timed(store.verify)
        rows.append(
            (
                f"verify {total:,} entries, SQLite{label}",
                f"{seconds:.2f} s ({total / seconds:,.0f}/s)",
            )
        )
        store.close()
    return rows


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="rollguard-bench-"))
    appends = 300 if QUICK else 2000
    rows: list[tuple[str, str]] = []

    sqlite = open_store(f"sqlite:///{folder / 'append.db'}")
    rows.append(
        ("append, SQLite (WAL, synchronous=FULL)", f"{append_rate(sqlite, appends):,.0f} entries/s")
    )
    sqlite.close()
    keyed = open_store(f"sqlite:///{folder / 'keyed.db'}", key=BENCH_KEY)
    rate = append_rate(keyed, appends)
    rows.append(("append, SQLite, keyed (HMAC-SHA256)", f"{rate:,.0f} entries/s"))
    keyed.close()

    try:
        from servers.postgres import running_postgres

        with running_postgres(fsync=True) as server:
            postgres = open_store(server.url())
            rate = append_rate(postgres, appends)
            rows.append(("append, PostgreSQL 15 (fsync on, loopback)", f"{rate:,.0f} entries/s"))
            postgres.close()
            total = 20_000 if QUICK else 100_000
            url = server.create_database("verify")
            bulk_load(url, (record(n, watch=f"w{n}") for n in range(total)))
            postgres = open_store(url)
            seconds = timed(postgres.verify)
            rows.append(
                (
                    f"verify {total:,} entries, PostgreSQL",
                    f"{seconds:.2f} s ({total / seconds:,.0f}/s)",
                )
            )
            postgres.close()
    except BaseException as exc:  # pytest.skip raises a BaseException subclass
        rows.append(("append, PostgreSQL 15", f"skipped: {exc}"))

    rows += sqlite_verify(folder, 20_000 if QUICK else 100_000)

    count = 2_000 if QUICK else 10_000
    url = f"sqlite:///{folder / 'report.db'}"
    entries = bulk_load(url, deployments(count))
    store = open_store(url)
    until = START + timedelta(minutes=4 * count + 10)
    report = build(store, since=START.isoformat(), until=until)
    assert report.total_deployments == count
    md = timed(
        lambda: render_report(build(store, since=START.isoformat(), until=until), format="md")
    )
    html = timed(
        lambda: render_report(build(store, since=START.isoformat(), until=until), format="html")
    )
    rows.append((f"report, {count:,} deployments ({entries:,} entries), md", f"{md:.2f} s"))
    rows.append((f"report, {count:,} deployments ({entries:,} entries), html", f"{html:.2f} s"))
    store.close()

    width = max(len(name) for name, _ in rows)
    print(f"{'benchmark':<{width}}  result")
    print(f"{'-' * width}  {'-' * 24}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
