"""``rollguard watch`` writes its audit trail; without a reachable store it refuses to start."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from rollguard.audit.export import as_dict
from rollguard.audit.factory import open_store
from rollguard.audit.keys import key_from_env
from rollguard.notifiers.webhook import sign
from rollguard.reports.build import build
from servers.receiver import Receiver, receiver
from support import free_port

__all__ = ["receiver"]

POLICY = """\
target: {{deployment: shop}}
metrics: {{provider: replay, file: series.csv}}
error_rate_trigger: {{threshold: 5%, measurement_window: 1 minute, action: immediate_rollback}}
{audit}
"""


def _write(folder: Path, audit: str = "") -> Path:
    rows = ["time,version,requests,errors,latency_p95_ms,memory_mb"]
    for t in range(5, 605, 5):
        rows.append(f"{t},stable,400,2,120,300")
        rows.append(f"{t},canary,100,{12 if t > 300 else 1},130,305")
    (folder / "series.csv").write_text("\n".join(rows) + "\n")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY.format(audit=audit))
    return policy


def _watch(policy: Path, cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, "watch", "--policy", str(policy), "--for", "10m", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_a_watch_leaves_a_verifiable_trail_next_to_its_policy(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    done = _watch(_write(tmp_path), rollguard_cmd, cli_env)
    assert done.returncode == 1, done.stderr
    store = open_store(f"sqlite:///{tmp_path / '.rollguard' / 'audit.db'}")
    kinds = [entry.record.kind for entry in store.list()]
    assert kinds[:3] == ["deployment_start", "decision", "action_intent"]
    assert kinds[-2:] == ["action_result", "deployment_end"]
    result = store.list(kind="action_result")[0].record
    assert (result.trigger, result.action, result.outcome) == (
        "error_rate_trigger",
        "immediate_rollback",
        "success",
    )
    assert result.metrics["errorRate"] is not None
    assert result.affected_users > 0  # canary requests in the firing trigger's window
    assert store.verify().ok
    report = build(store, since="1970-01-01T00:00:00Z")
    assert (report.total_deployments, report.rollback_events) == (1, 1)
    assert store.lock_holder("shop") is None
    store.close()


def test_a_watch_with_a_key_writes_a_keyed_trail_and_never_shows_the_key(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    secret = "k3y-watch-2c8e1f6a9b0d4e7f-never-shown"
    cli_env["AUDIT_KEY"] = secret
    done = _watch(_write(tmp_path, "audit: {key_env: AUDIT_KEY}"), rollguard_cmd, cli_env)
    assert done.returncode == 1, done.stderr
    assert secret not in done.stdout + done.stderr
    url = f"sqlite:///{tmp_path / '.rollguard' / 'audit.db'}"
    key = key_from_env("AUDIT_KEY", field="test", environ=cli_env)
    store = open_store(url, key=key)
    try:
        report = store.verify()
        assert (report.ok, report.key_id) == (True, key.id)
        assert report.entries >= 5
        dumped = json.dumps([as_dict(entry) for entry in store.list()])
        assert secret not in dumped
    finally:
        store.close()
    stored = b"".join(path.read_bytes() for path in (tmp_path / ".rollguard").rglob("*"))
    assert secret.encode() not in stored
    cli_env["AUDIT_KEY"] = "another-key-5d3c1b9a7e2f4d6c"
    again = _watch(_write(tmp_path, "audit: {key_env: AUDIT_KEY}"), rollguard_cmd, cli_env)
    assert again.returncode == 6
    assert f"is keyed with key id {key.id}, but the key in $AUDIT_KEY has key id" in again.stderr
    assert "another-key" not in again.stdout + again.stderr
    assert "Traceback" not in again.stderr


def test_a_postgresql_that_is_down_stops_the_watch_before_it_starts(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    url = f"postgresql://rollguard:pw-9f8e7d@127.0.0.1:{free_port()}/audit"
    cli_env["AUDIT_URL"] = url
    done = _watch(_write(tmp_path, "audit: {url_env: AUDIT_URL}"), rollguard_cmd, cli_env)
    assert done.returncode == 6
    assert (
        "cannot open the audit store at postgresql+psycopg://rollguard:***@127.0.0.1" in done.stderr
    )
    assert "pw-9f8e7d" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_an_audit_url_of_another_scheme_is_bad_input_not_a_broken_trail(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    cli_env["AUDIT_URL"] = "mysql://rollguard:pw-9f8e7d@127.0.0.1/audit"
    done = _watch(_write(tmp_path, "audit: {url_env: AUDIT_URL}"), rollguard_cmd, cli_env)
    assert done.returncode == 2
    assert "audit.url_env ($AUDIT_URL): unsupported scheme 'mysql'; accepted schemes: sqlite" in (
        done.stderr
    )
    assert "pw-9f8e7d" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_a_rollback_notifies_a_signed_webhook_and_records_the_delivery(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str], receiver: Receiver
) -> None:
    notifications = (
        "notifications:\n"
        "  channels: {hook: {type: webhook, url_env: HOOK_URL, secret_env: HOOK_SECRET}}\n"
        "  routes: {critical_alert: [hook]}\n"
    )
    cli_env |= {"HOOK_URL": f"{receiver.url}/rollguard", "HOOK_SECRET": "k3y-for-hmac-tests"}
    done = _watch(_write(tmp_path, notifications), rollguard_cmd, cli_env)
    assert done.returncode == 1, done.stderr
    (request,) = receiver.requests
    body = json.loads(request.body)
    assert (body["route"], body["deployment"]) == ("critical_alert", "shop")
    timestamp = request.headers["X-Rollguard-Timestamp"]
    assert request.headers["X-Rollguard-Signature"] == sign(
        "k3y-for-hmac-tests", timestamp, request.body
    )
    assert "k3y-for-hmac-tests" not in done.stdout + done.stderr
    assert receiver.url not in done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["deliveries"] == [{"channel": "hook", "ok": True, "detail": "HTTP 200"}]
