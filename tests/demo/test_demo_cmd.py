"""``rollguard demo`` end to end: real servers, real traffic, a real rollback.

Each scenario runs the CLI as a user would (a subprocess, ``--output json``) at
time scale 60 so the suite stays short; the assertions are on what happened,
never on how fast: outcome, exit code, the trigger that fired, where traffic
ended, and the error rate users saw after recovery compared with stable's.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollguard.demo.scenarios import demo_policy
from rollguard.policy import load_policy
from support import Run, require_binary, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run_demo(run_cli: Run, scenario: str, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    done = run_cli(
        "demo",
        "--scenario",
        scenario,
        "--output",
        "json",
        "--time-scale",
        "60",
        *extra,
        timeout=110,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert lines, done.stderr
    return done.returncode, lines


def _result(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The demo's result object (the last line names the commands that show the trail)."""
    return next(line for line in reversed(lines) if "outcome" in line)


def _servers(lines: list[dict[str, Any]]) -> list[str]:
    started = next(line for line in lines if line.get("kind") == "started")
    return [started["stable"], started["canary"], started["router"]]


def _all_gone(urls: list[str]) -> bool:
    for url in urls:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
        except httpx.TransportError:
            continue
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "trigger", "action"),
    [
        ("error-rate", "error_rate_trigger", "immediate_rollback"),
        ("latency", "latency_trigger", "gradual_rollback_with_traffic_shifting"),
        ("memory", "memory_trigger", "scaling_and_rollback"),
    ],
)
def test_a_faulty_canary_is_detected_and_rolled_back(
    run_cli: Run, scenario: str, trigger: str, action: str
) -> None:
    code, lines = _run_demo(run_cli, scenario)
    result = _result(lines)
    assert (code, result["outcome"], result["exit_code"]) == (1, "rolled_back", 1), result
    assert (result["trigger"], result["action"]) == (trigger, action)
    assert result["trigger_evidence"]["value"] > result["trigger_evidence"]["limit"]
    assert result["detect_seconds"] > 0  # decided after the fault, not by chance before it
    assert result["recovered_at"] >= result["detected_at"] >= result["fault_at"]
    assert (result["canary_weight"], result["canary_requests_after"]) == (0, 0)
    # Users are back to what stable alone gives them.
    assert result["users_error_rate_after"] <= result["stable_error_rate"] + 1.0
    if scenario == "error-rate":
        assert result["users_error_rate_during"] > result["users_error_rate_after"]
    # The fault started mid-promotion: past the first step, short of 100 %, and the
    # release took no step after it.
    steps = result["promotion_steps"]
    assert [step["canary_weight"] for step in steps] == [20, 40]
    assert steps[-1]["at"] < result["fault_at"]
    assert result["promoted_seconds"] is None
    assert _all_gone(_servers(lines))


@pytest.mark.slow
def test_a_healthy_canary_is_promoted_step_by_step_on_evidence(run_cli: Run) -> None:
    code, lines = _run_demo(run_cli, "promote")
    result = _result(lines)
    assert (code, result["outcome"], result["action"]) == (0, "promoted", "promote")
    assert result["canary_weight"] == 100
    # Each step as it happened, in order, then the same timeline in the result.
    shown = [line["canary_weight"] for line in lines if line.get("kind") == "step"]
    assert shown == [20, 40, 70, 100]
    steps = result["promotion_steps"]
    assert [step["canary_weight"] for step in steps] == shown
    assert [step["seconds"] for step in steps] == sorted(step["seconds"] for step in steps)
    # Every step after the first moved on evidence: each test at or above 1/beta.
    for step in steps[1:]:
        assert step["evidence"]
        assert all(test["e_value"] >= test["threshold"] for test in step["evidence"])
    # each figure is rounded to the millisecond on its own
    promoted = steps[-1]["seconds"] - steps[0]["seconds"]
    assert result["promoted_seconds"] == pytest.approx(promoted, abs=0.002)
    assert result["users_error_rate_during"] == 0.0
    assert _all_gone(_servers(lines))


@pytest.mark.slow
@pytest.mark.real_server
def test_on_real_haproxy_and_prometheus_the_rollback_is_the_same(run_cli: Run) -> None:
    require_binary("haproxy", hint="apt-get install haproxy")
    require_binary("prometheus", hint="apt-get install prometheus")
    code, lines = _run_demo(run_cli, "error-rate", "--stack", "real")
    result = _result(lines)
    assert (code, result["outcome"], result["trigger"]) == (1, "rolled_back", "error_rate_trigger")
    started = next(line for line in lines if line.get("kind") == "started")
    assert "prometheus" in started
    assert "HAProxy" in started["message"]  # the traffic went through HAProxy, not the router
    assert (result["canary_weight"], result["canary_requests_after"]) == (0, 0)
    assert result["users_error_rate_after"] <= result["stable_error_rate"] + 1.0
    assert _all_gone([*_servers(lines), started["prometheus"]])


@pytest.mark.slow
def test_the_demo_leaves_its_trail_where_audit_list_and_report_read(
    run_cli: Run, tmp_path: Path
) -> None:
    """`rollguard demo` then `rollguard audit list` / `report` in the same folder."""
    code, lines = _run_demo(run_cli, "error-rate")
    assert code == 1
    assert lines[0]["audit_store"] == str(tmp_path / ".rollguard" / "audit.db")
    assert lines[-1] == {"type": "audit", "show": ["rollguard audit list", "rollguard report"]}

    listed = run_cli("audit", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    kinds = [(e["deployment"], e["kind"]) for e in json.loads(listed.stdout)]
    assert ("demo-service", "action_result") in kinds
    assert kinds[-1] == ("demo-service", "deployment_end")
    report = run_cli("report")
    assert report.returncode == 0, report.stderr
    assert "- Rollback Events: 1" in report.stdout
    other = tmp_path / "elsewhere.db"
    code, lines = _run_demo(run_cli, "healthy", "--audit-url", f"sqlite:///{other}")
    assert lines[-1]["show"] == [
        f"rollguard audit list --db sqlite:///{other}",
        f"rollguard report --db sqlite:///{other}",
    ]
    assert run_cli("audit", "verify", "--db", f"sqlite:///{other}").returncode == 0


@pytest.mark.slow
def test_a_healthy_canary_is_left_serving(run_cli: Run) -> None:
    code, lines = _run_demo(run_cli, "healthy")
    result = _result(lines)
    assert (code, result["outcome"], result["action"], result["trigger"]) == (
        0,
        "healthy",
        "continue",
        None,
    )
    assert result["canary_weight"] == 20
    assert result["users_error_rate_during"] == 0.0
    evaluations = [line for line in lines if line.get("type") == "evaluation"]
    assert evaluations
    assert all(t["status"] != "firing" for e in evaluations for t in e["triggers"])
    assert _all_gone(_servers(lines))


def test_ctrl_c_stops_every_server(
    rollguard_cmd: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [*rollguard_cmd, "demo", "--scenario", "healthy", "--output", "json"],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        lines: list[dict[str, Any]] = []
        for raw in process.stdout:
            lines.append(json.loads(raw))
            if lines[-1].get("kind") == "watching":
                break
        urls = _servers(lines)
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 130
        assert json.loads(process.stdout.readlines()[-1])["type"] == "interrupted"
        wait_until(lambda: _all_gone(urls), timeout=10, what="the demo's servers to stop")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_an_unknown_scenario_is_a_usage_error(run_cli: Run) -> None:
    done = run_cli("demo", "--scenario", "meltdown")
    assert done.returncode == 2
    assert "meltdown" in done.stderr


def test_promote_on_the_real_stack_is_refused_with_why(run_cli: Run) -> None:
    done = run_cli("demo", "--scenario", "promote", "--stack", "real")
    assert done.returncode == 2
    assert "--scenario promote runs on --stack embedded only" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_example_policy_is_the_demos_policy() -> None:
    example = load_policy(EXAMPLES / "demo-policy.yaml")
    built = demo_policy(
        stable="http://127.0.0.1:8001",
        canary="http://127.0.0.1:8002",
        router="http://127.0.0.1:8090",
    )
    assert example.model_dump() == built.model_dump()
