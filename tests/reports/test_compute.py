"""The report's numbers from a store of known watches: counts, rates, timings, checklist."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit_records import day, record_watch
from rollguard.audit.factory import open_store
from rollguard.audit.sql import SqlAuditStore
from rollguard.reports.build import build, render_report
from rollguard.reports.compute import stats

UNTIL = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> SqlAuditStore:
    opened = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    yield opened  # type: ignore[misc]
    opened.close()


def fill(store: SqlAuditStore) -> None:
    """10 watches in the period: 6 healthy, 3 rolled back (1 failed), 1 gradual."""
    for n in range(6):
        record_watch(store, watch_id=f"ok{n}", start=day(2 + n))
    record_watch(
        store, watch_id="r1", start=day(10), detect_after=40, recover_after=5, affected_users=100
    )
    record_watch(
        store, watch_id="r2", start=day(10), detect_after=60, recover_after=7, affected_users=30
    )
    record_watch(
        store,
        watch_id="r3",
        start=day(12),
        detect_after=200,
        recover_after=240,
        action="gradual_rollback_with_traffic_shifting",
        trigger="latency_trigger",
        severity="warning",
        affected_users=500,
    )
    record_watch(
        store,
        watch_id="r4",
        start=day(20),
        detect_after=20,
        recover_after=3,
        outcome="failure",
        affected_users=7,
    )
    # Before the period: not counted.
    record_watch(store, watch_id="old", start=datetime(2026, 9, 1, tzinfo=UTC), detect_after=1)


def test_the_numbers_match_the_store(store: SqlAuditStore) -> None:
    fill(store)
    report = build(store, since="2026-11-01T00:00:00Z", until=UNTIL)
    assert report.total_deployments == 10
    assert report.rollback_events == 4
    assert report.failed_rollbacks == 1
    assert report.rollback_rate_percent == 40.0
    assert report.by_trigger == {"error_rate_trigger": 3, "latency_trigger": 1}
    assert report.by_severity == {"critical": 3, "warning": 1}
    assert report.by_action == {
        "immediate_rollback": 3,
        "gradual_rollback_with_traffic_shifting": 1,
    }
    assert report.time_to_detect.mean == pytest.approx((40 + 60 + 200 + 20) / 4)
    assert report.time_to_detect.p95 == 200
    assert report.time_to_recover.mean == pytest.approx((5 + 7 + 240 + 3) / 4)
    assert report.affected_users == 637
    assert report.rollbacks_per_day == {"2026-11-10": 2, "2026-11-12": 1, "2026-11-20": 1}
    checks = {item.name: item.status for item in report.checklist}
    assert checks == {
        "Audit trail complete": "pass",
        "Automated monitoring active": "pass",
        "Rollback triggers functional": "pass",
        "No failed rollbacks": "fail",
        "Every action completed or recovered": "pass",
        "Every watch recorded its outcome": "pass",
    }


def test_the_checklist_follows_the_facts(store: SqlAuditStore) -> None:
    record_watch(store, watch_id="a", start=day(3))
    record_watch(store, watch_id="b", start=day(4), ended=False)
    report = build(store, since="2026-11-01T00:00:00Z", until=UNTIL)
    checks = {item.name: item.status for item in report.checklist}
    assert checks["Rollback triggers functional"] == "unknown"
    assert checks["Every watch recorded its outcome"] == "fail"
    assert report.rollback_rate_percent == 0.0


def test_a_broken_chain_fails_the_audit_line(store: SqlAuditStore, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    fill(store)
    engine = create_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_entries_no_delete"))
        connection.execute(text("DELETE FROM audit_entries WHERE id = 9"))
    engine.dispose()
    report = build(store, since="2026-11-01T00:00:00Z", until=UNTIL)
    audit_line = report.checklist[0]
    assert (audit_line.name, audit_line.status) == ("Audit trail complete", "fail")
    assert "entry 9 was deleted" in audit_line.evidence
    markdown = render_report(report, format="md")
    assert "- ❌ Audit trail complete — entry 9 was deleted" in markdown


def test_markdown_has_the_seed_summary(store: SqlAuditStore) -> None:
    fill(store)
    markdown = render_report(build(store, since="2026-11-01T00:00:00Z", until=UNTIL), format="md")
    assert "**Period**: 2026-11-01 to 2026-11-27" in markdown
    assert "- Total Deployments: 10\n- Rollback Events: 4\n- Rollback Rate: 40.00%" in markdown
    assert "- ✅ Rollback triggers functional" in markdown
    assert "| latency_trigger | 1 |" in markdown


def test_an_empty_store_says_so_instead_of_dividing_by_zero(store: SqlAuditStore) -> None:
    report = build(store, since="2026-11-01T00:00:00Z", until=UNTIL)
    assert report.rollback_rate_percent is None
    assert "Rollback Rate: n/a (no deployments)" in render_report(report, format="md")
    assert {i.name: i.status for i in report.checklist}["Automated monitoring active"] == "fail"


def test_an_empty_store_is_empty_never_complete(store: SqlAuditStore) -> None:
    report = build(store, since="2026-11-01T00:00:00Z", until=UNTIL)
    checks = {item.name: item for item in report.checklist}
    assert checks["Audit trail empty"].status == "unknown"
    assert "empty" in checks["Audit trail empty"].evidence
    assert {item.status for item in report.checklist} <= {"unknown", "fail"}
    assert "✅" not in render_report(report, format="md")
    assert "Audit trail complete" not in render_report(report, format="md")


def test_gate_blocks_count_as_blocked_deployments(store: SqlAuditStore) -> None:
    from rollguard.audit.base import AuditRecord

    for outcome in ("blocked", "passed", "blocked"):
        store.append(
            AuditRecord(
                kind="gate",
                deployment="shop",
                timestamp="2026-11-20T09:00:00Z",
                action="deployment_block" if outcome == "blocked" else "continue",
                outcome=outcome,
            )
        )
    report = build(store, since="2026-11-01T00:00:00Z", until=UNTIL)
    assert report.blocked_deployments == 2
    assert "- Blocked Deployments: 2" in render_report(report, format="md")


def test_p95_is_nearest_rank() -> None:
    assert stats([float(n) for n in range(1, 21)]).p95 == 19
    assert stats([3.0]).p95 == 3
    assert stats([]).mean is None
