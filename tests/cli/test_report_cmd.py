"""``rollguard report`` from a real store, as a subprocess."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit_records import record_watch
from rollguard.audit.factory import open_store
from support import Run


def test_report_writes_markdown_and_html_for_the_last_30_days(
    rollguard_cmd: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    store = open_store(db)
    now = datetime.now(UTC)
    record_watch(store, watch_id="a", start=now - timedelta(days=2))
    record_watch(
        store, watch_id="b", start=now - timedelta(days=1), detect_after=45, recover_after=5
    )
    record_watch(store, watch_id="old", start=now - timedelta(days=45), detect_after=5)
    store.close()
    md = subprocess.run(
        [*rollguard_cmd, "report", "--db", db],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert md.returncode == 0, md.stderr
    assert "- Total Deployments: 2\n- Rollback Events: 1\n- Rollback Rate: 50.00%" in md.stdout
    page = tmp_path / "r.html"
    html = subprocess.run(
        [*rollguard_cmd, "report", "-o", "html", "-f", str(page), "--since", "7d", "--db", db],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert html.returncode == 0, html.stderr
    assert 'data-metric="rollback_events">1<' in page.read_text()


def test_report_rejects_garbage_since(
    rollguard_cmd: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    done = subprocess.run(
        [*rollguard_cmd, "report", "--since", "last tuesday", "--db", db],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--since: expected a duration" in done.stderr
    assert "Traceback" not in done.stderr


def test_two_blocking_gates_are_two_blocked_deployments(
    run_cli: Run, tmp_path: Path, fixtures_dir: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "target: {deployment: web}\nmetrics: {provider: replay, file: r.csv}\n"
        "security_trigger: {critical_vulnerabilities: 0 tolerance}\n"
    )
    trivy = fixtures_dir / "trivy" / "trivy-action-alpine-3.10.json"
    for _ in range(2):
        gate = run_cli("gate", "--policy", str(policy), "--vuln-report", str(trivy))
        assert gate.returncode == 3, gate.stderr
    report = run_cli("report", "--policy", str(policy))
    assert report.returncode == 0, report.stderr
    assert "- Blocked Deployments: 2" in report.stdout


def test_report_on_an_empty_store_says_empty_and_shows_no_pass(
    run_cli: Run, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    open_store(db).close()
    done = run_cli("report", "--db", db)
    assert done.returncode == 0, done.stderr
    assert "❔ Audit trail empty — audit trail empty" in done.stdout
    assert "Audit trail complete" not in done.stdout
    assert "✅" not in done.stdout
