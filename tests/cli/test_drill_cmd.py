"""``rollguard drill`` end to end: real audit stores, a real HAProxy, real commands."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollguard.audit.factory import open_store
from servers.haproxy import BACKEND, HaproxyServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WEIGHTS_CLI = Path(__file__).resolve().parents[1] / "servers" / "weights_cli.py"
Invoke = Callable[..., Any]  # the invoke_cli fixture (tests/cli/conftest.py)
METRICS = "metrics: {provider: prometheus, address: 'http://127.0.0.1:9090'}\n"


def _example(tmp_path: Path, name: str) -> Path:
    """A copy of an example policy, so its relative audit store lands in ``tmp_path``."""
    path = tmp_path / name
    shutil.copy(EXAMPLES / name, path)
    return path


def _kinds(tmp_path: Path) -> list[tuple[str, str]]:
    store = open_store(f"sqlite:///{tmp_path / '.rollguard' / 'audit.db'}")
    try:
        return [(e.record.kind, e.record.outcome) for e in store.list()]
    finally:
        store.close()


def _entry(tmp_path: Path) -> dict[str, object]:
    store = open_store(f"sqlite:///{tmp_path / '.rollguard' / 'audit.db'}")
    try:
        [entry] = store.list()
        record = entry.record
        return {
            "id": entry.id,
            "kind": record.kind,
            "outcome": record.outcome,
            "trigger": record.trigger,
            "action": record.action,
            "evidence": dict(record.evidence),
            "executor_output": dict(record.executor_output),
        }
    finally:
        store.close()


@pytest.mark.parametrize(
    ("example", "trigger", "action"),
    [
        ("seed-policy.yaml", "error_rate_trigger", "immediate_rollback"),
        ("sequential-policy.yaml", "error_rate_trigger", "immediate_rollback"),
    ],
)
def test_an_example_policy_drills_its_default_trigger_and_the_report_counts_it(
    invoke_cli: Invoke, tmp_path: Path, example: str, trigger: str, action: str
) -> None:
    policy = _example(tmp_path, example)
    done = invoke_cli("drill", "--policy", str(policy))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"DRILL PASSED  trigger: {trigger}  action: {action}" in done.stdout
    assert _kinds(tmp_path) == [("drill", "success")]  # no decision/action entries
    entry = _entry(tmp_path)
    assert f"audit:    drill entry #{entry['id']} (success)" in done.stdout
    assert entry["executor_output"]["executed"] is False
    report = invoke_cli("report", "--policy", str(policy))
    assert report.returncode == 0, report.stderr
    assert (
        "✅ Rollback triggers functional — 0 successful rollbacks and 1 successful drill"
        in report.stdout
    )
    assert "Rollback Events: 0" in report.stdout  # a drill is not a rollback


def test_drilling_a_sequential_latency_trigger_shows_each_gradual_step(
    invoke_cli: Invoke, tmp_path: Path
) -> None:
    policy = _example(tmp_path, "sequential-policy.yaml")
    done = invoke_cli(
        "drill", "--policy", str(policy), "--trigger", "latency_trigger", "--output", "json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert (data["outcome"], data["trigger"], data["breach"]["method"]) == (
        "success",
        "latency_trigger",
        "sequential",
    )
    assert data["decision"]["trigger"] == "latency_trigger"
    shifted = [s for s in data["steps"] if s["step"] == "set_canary_weight"]
    shares = [(s["to_stable_percent"], s["from_percent"]) for s in shifted]
    assert shares == [(25, 20), (50, 20), (75, 20), (100, 20)]
    # once the canary has no traffic, the release itself is rolled back
    assert [s["step"] for s in data["steps"][len(shifted) :]] == ["rollback"]
    assert data["final_status"]["canary_weight"] == 0
    assert data["audit_id"] == _entry(tmp_path)["id"]


def test_drilling_the_seed_latency_trigger_needs_its_baseline(
    invoke_cli: Invoke, tmp_path: Path
) -> None:
    policy = _example(tmp_path, "seed-policy.yaml")
    missing = invoke_cli("drill", "--policy", str(policy), "--trigger", "latency_trigger")
    assert missing.returncode == 2
    assert "'latency_trigger' compares with the baseline: give --baseline FILE" in missing.stderr
    baseline = tmp_path / "performance-baseline.json"
    baseline.write_text(
        json.dumps(
            {
                "timestamp": "2026-11-01T00:00:00Z",
                "metrics": {"error_rate_percent": 0.4, "avg_latency_ms": 90, "p95_latency_ms": 180},
            }
        )
    )
    done = invoke_cli(
        "drill", "--policy", str(policy), "--trigger", "latency_trigger", "-o", "json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    breach = json.loads(done.stdout)["breach"]
    assert (breach["reference_source"], breach["reference"]) == ("baseline", 180.0)
    assert breach["limit"] == pytest.approx(234.0)  # 180 ms + 30 %
    assert breach["value"] > breach["limit"]


def test_an_unknown_trigger_names_the_accepted_ones(invoke_cli: Invoke, tmp_path: Path) -> None:
    policy = _example(tmp_path, "seed-policy.yaml")
    done = invoke_cli("drill", "--policy", str(policy), "--trigger", "security_trigger")
    assert done.returncode == 2
    assert "accepted: error_rate_trigger, runtime_security." in done.stderr
    assert "latency_trigger" in done.stderr
    assert not (tmp_path / ".rollguard" / "audit.db").exists()  # nothing recorded


def test_an_inert_trigger_exits_4_with_a_failed_drill_on_record(
    invoke_cli: Invoke, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "target: {deployment: shop}\n"
        + METRICS
        + "error_rate_trigger: {increase: 99.5, compare_with: stable}\n"  # reaches 100 %
    )
    done = invoke_cli("drill", "--policy", str(policy))
    assert done.returncode == 4, done.stdout
    assert "DRILL FAILED" in done.stdout
    entry = _entry(tmp_path)
    assert (entry["kind"], entry["outcome"]) == ("drill", "failure")
    assert entry["evidence"]["fired"] is False


def test_a_broken_audit_store_exits_6_before_anything_runs(
    invoke_cli: Invoke, tmp_path: Path
) -> None:
    (tmp_path / "store-is-a-folder").mkdir()
    state = tmp_path / "state.json"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "target:\n  deployment: shop\n  executor:\n    type: command\n"
        f"    rollback: [{sys.executable}, {WEIGHTS_CLI}, {state}, rollback]\n"
        + METRICS
        + "audit: {url: 'sqlite:///store-is-a-folder'}\n"
        + "error_rate_trigger: {above: 5}\n"
    )
    done = invoke_cli("drill", "--policy", str(policy), "--execute")
    assert done.returncode == 6
    assert "is not a file" in done.stderr
    assert not state.exists()  # the real executor was never called


def _command_policy(tmp_path: Path, rollback: str) -> Path:
    state = tmp_path / "state.json"
    tool = f"[{sys.executable}, {WEIGHTS_CLI}, {state}"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "target:\n  deployment: shop\n  executor:\n    type: command\n"
        f"    rollback: {rollback}\n"
        f"    status: {tool}, status]\n" + METRICS + "error_rate_trigger: {above: 5}\n"
    )
    return policy


def test_a_failing_real_executor_exits_5_with_a_failed_drill_on_record(
    invoke_cli: Invoke, tmp_path: Path
) -> None:
    policy = _command_policy(tmp_path, f"[{sys.executable}, -c, 'raise SystemExit(3)']")
    done = invoke_cli("drill", "--policy", str(policy), "--execute", "-o", "json")
    assert done.returncode == 5, done.stdout
    data = json.loads(done.stdout)
    assert data["fired"] is True
    assert "exited with code 3" in data["reason"]
    entry = _entry(tmp_path)
    assert (entry["kind"], entry["outcome"]) == ("drill", "failure")
    assert entry["executor_output"]["executed"] is True


def test_an_executor_that_cannot_be_built_is_a_failed_drill_on_record(
    invoke_cli: Invoke, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "target:\n  deployment: shop\n  executor:\n    type: kubernetes\n"
        f"    deployment: shop\n    kubeconfig: {tmp_path / 'missing-kubeconfig'}\n"
        + METRICS
        + "error_rate_trigger: {threshold: 5%, measurement_window: 5 minutes, "
        "action: immediate_rollback}\n"
    )
    done = invoke_cli("drill", "--policy", str(policy), "--execute")
    assert done.returncode == 5, done.stdout
    assert "cannot load Kubernetes credentials" in done.stderr
    entry = _entry(tmp_path)
    assert (entry["kind"], entry["outcome"]) == ("drill", "failure")
    assert entry["executor_output"]["executed"] is True
    assert "Kubernetes credentials" in str(entry["executor_output"]["error"])


@pytest.mark.real_server
def test_execute_rolls_a_real_haproxy_back_and_records_it(
    invoke_cli: Invoke, tmp_path: Path, canary_haproxy: HaproxyServer
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "target:\n  deployment: shop\n  executor:\n    type: haproxy\n"
        f"    socket: {canary_haproxy.socket_path}\n    backend: {BACKEND}\n"
        + METRICS
        + "latency_trigger: {above: 500, action: gradual_rollback}\n"
    )
    assert canary_haproxy.count_answers(50)["canary"] > 0  # the canary serves before the drill
    done = invoke_cli("drill", "--policy", str(policy), "--execute")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "executed on the real target" in done.stdout
    assert "WARNING: --execute: gradual_rollback_with_traffic_shifting will run" in done.stderr
    assert canary_haproxy.command(f"get weight {BACKEND}/canary").startswith("0 ")
    assert canary_haproxy.count_answers(50) == {"stable": 50}
    entry = _entry(tmp_path)
    assert (entry["kind"], entry["outcome"]) == ("drill", "success")
    assert entry["executor_output"]["executed"] is True
    assert entry["executor_output"]["final"]["canary_weight"] == 0


def test_a_keyed_trail_gets_a_keyed_drill_entry_that_verifies(
    invoke_cli: Invoke, tmp_path: Path
) -> None:
    key = "drill-key-7f3a9c51e0b24d68-never-shown"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "target: {deployment: shop}\n"
        + METRICS
        + "audit: {key_env: DRILL_AUDIT_KEY}\n"
        + "error_rate_trigger: {above: 5}\n"
    )
    unset = invoke_cli("drill", "--policy", str(policy), env={"DRILL_AUDIT_KEY": ""})
    assert unset.returncode == 2
    assert "DRILL_AUDIT_KEY is not set" in unset.stderr
    env = {"DRILL_AUDIT_KEY": key}
    done = invoke_cli("drill", "--policy", str(policy), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert key not in done.stdout
    verified = invoke_cli("audit", "verify", "--policy", str(policy), env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    wrong = invoke_cli(
        "audit", "verify", "--policy", str(policy), env={"DRILL_AUDIT_KEY": "x" * 40}
    )
    assert wrong.returncode == 6  # the entry was hashed with the policy's key


def test_execute_refuses_while_a_watch_holds_the_deployment(
    invoke_cli: Invoke, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    policy = _command_policy(tmp_path, f"[{sys.executable}, {WEIGHTS_CLI}, {state}, rollback]")
    store = open_store(f"sqlite:///{tmp_path / '.rollguard' / 'audit.db'}")
    try:
        store.acquire_lock("shop", owner="a-live-watch", lease_seconds=600)
    finally:
        store.close()
    done = invoke_cli("drill", "--policy", str(policy), "--execute")
    assert done.returncode == 2
    assert "a-live-watch" in done.stderr
    assert not state.exists()  # the real rollback never ran
    assert _kinds(tmp_path) == []
    dry = invoke_cli("drill", "--policy", str(policy))  # a dry drill touches nothing: allowed
    assert dry.returncode == 0, dry.stdout + dry.stderr


def test_execute_runs_the_real_command_and_reads_its_status_back(
    invoke_cli: Invoke, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    policy = _command_policy(tmp_path, f"[{sys.executable}, {WEIGHTS_CLI}, {state}, rollback]")
    done = invoke_cli("drill", "--policy", str(policy), "--execute", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(state.read_text())["canary_weight"] == 0
    calls = [json.loads(line) for line in Path(f"{state}.log").read_text().splitlines()]
    assert calls[0]["argv"] == ["rollback"]
    assert calls[0]["env"]["ROLLGUARD_TRIGGER"] == "error_rate_trigger"
    assert json.loads(done.stdout)["final_status"]["canary_weight"] == 0


def test_help_documents_the_exit_codes(invoke_cli: Invoke) -> None:
    done = invoke_cli("drill", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for code in ("0 the drill passed", "2 invalid input", "4 the trigger did not fire"):
        assert code in text
    assert "5 the action failed" in text
    assert "6 audit store broken" in text


def test_a_status_nobody_read_gets_no_tick(invoke_cli: Invoke, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "target:\n  deployment: shop\n  executor:\n    type: command\n"
        f"    rollback: [{sys.executable}, -c, 'pass']\n"
        + METRICS
        + "error_rate_trigger: {above: 5}\n"
    )
    done = invoke_cli("drill", "--policy", str(policy), "--execute")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ rollback:" in done.stdout  # the command ran and succeeded: that was checked
    assert "✓ status" not in done.stdout
    assert "- status: not read back (the command executor has no status command)" in done.stdout
    assert "the traffic split was not read back" in done.stdout
    dry = invoke_cli("drill", "--policy", str(policy), "-o", "json")
    final = json.loads(dry.stdout)["final_status"]
    assert final["assumed"] == "the noop executor changes and reads nothing"
    assert "not read back" in json.loads(dry.stdout)["reason"]
