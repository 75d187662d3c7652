"""``rollguard generate alerts``: rules that promtool accepts and that fire when they should.

The promtool unit tests in ``promtool/*_test.yml`` feed synthetic series above
and below each limit; here they run against freshly generated rules.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from generate_cases import PROMTOOL_CASES
from ruamel.yaml import YAML

from rollguard import promql
from rollguard.engine.evaluate import canary_query
from rollguard.generate.alerts import AlertOptions, alert_groups, alert_name
from rollguard.generate.source import load_source
from rollguard.policy.model import MetricNames

CASES = [
    ("seed-policy.yaml", "seed_alerts_test.yml"),
    ("stable-policy.yaml", "stable_alerts_test.yml"),
]


Generate = Callable[[Path, Path], subprocess.CompletedProcess[str]]


@pytest.fixture
def generate(rollguard_cmd: list[str], cli_env: dict[str, str]) -> Generate:
    """Run ``rollguard generate alerts --policy P -o OUT`` as a user would."""

    def run(policy: Path, output: Path) -> subprocess.CompletedProcess[str]:
        return _generate(rollguard_cmd, cli_env, policy, output)

    return run


def _generate(
    rollguard_cmd: list[str], env: dict[str, str], policy: Path, output: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*rollguard_cmd, "generate", "alerts", "--policy", str(policy), "-f", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.real_server
@pytest.mark.parametrize(("policy", "unit_tests"), CASES)
def test_generated_rules_pass_promtool_check_and_unit_tests(
    tmp_path: Path,
    promtool: Path,
    generate: Generate,
    policy: str,
    unit_tests: str,
) -> None:
    for name in (policy, unit_tests, "performance-baseline.json"):
        shutil.copy(PROMTOOL_CASES / name, tmp_path / name)
    rules = tmp_path / "rules.yml"

    generated = generate(tmp_path / policy, rules)
    assert generated.returncode == 0, generated.stderr

    check = subprocess.run(
        [str(promtool), "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout
    tested = subprocess.run(
        [str(promtool), "test", "rules", unit_tests],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize(("policy", "unit_tests"), CASES)
def test_every_generated_alert_has_a_firing_and_a_silent_unit_test(
    policy: str, unit_tests: str
) -> None:
    groups = alert_groups(load_source(PROMTOOL_CASES / policy))
    generated = {rule["alert"] for rule in groups["groups"][0]["rules"]}
    cases = YAML(typ="safe").load((PROMTOOL_CASES / unit_tests).read_text())
    firing: set[str] = set()
    silent: set[str] = set()
    for case in cases["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    relevant = generated - {"RollguardControllerDown", "RollguardRolledBack"}
    if policy.startswith("stable"):  # the seed's unit tests cover rollguard's own alerts
        relevant -= {"RollguardNoData"}
        assert relevant <= firing, relevant - firing
        assert relevant - {"RollguardNoData"} <= silent
    else:
        assert generated <= firing, generated - firing
        assert generated <= silent, generated - silent


def test_one_alert_per_trigger_with_the_policy_labels() -> None:
    source = load_source(PROMTOOL_CASES / "seed-policy.yaml")
    rules = alert_groups(source)["groups"][0]["rules"]
    by_trigger = {rule["labels"].get("trigger"): rule for rule in rules}
    for trigger in source.policy.rules:
        rule = by_trigger[trigger.name]
        assert rule["labels"]["severity"] == trigger.severity.value
        assert rule["labels"]["rollguard_policy"] == "pqc-service"
        assert rule["labels"]["action"] == trigger.action.value
    # The very expression the Prometheus provider runs, then the limit and min_requests.
    error_rate = next(rule for rule in source.policy.rules if rule.name == "error_rate_trigger")
    canary = promql.for_query(
        canary_query(error_rate), names=MetricNames(), selector='version="canary"'
    )
    assert by_trigger["error_rate_trigger"]["expr"] == (
        f"{canary.value} > 5 and {canary.requests} >= 20"
    )
    assert canary.value.startswith(
        '100 * (sum(rate(http_requests_total{code=~"5..",version="canary"}[5m])) or '
    )


def test_for_mirrors_the_engine_persistence_and_group_runs_at_the_policy_interval() -> None:
    source = load_source(PROMTOOL_CASES / "stable-policy.yaml")
    group = alert_groups(source)["groups"][0]
    assert group["interval"] == "10s"
    latency = next(rule for rule in group["rules"] if rule["alert"] == "RollguardLatency")
    assert latency["for"] == "20s"  # persistence 3, 10 s apart: breaching for 20 s


def test_runbook_url_links_each_alert_to_its_trigger() -> None:
    source = load_source(PROMTOOL_CASES / "seed-policy.yaml")
    options = AlertOptions(runbook_url="https://runbooks.example/rollguard")
    rules = alert_groups(source, options)["groups"][0]["rules"]
    error_rate = next(rule for rule in rules if rule["alert"] == "RollguardErrorRate")
    assert error_rate["annotations"]["runbook_url"] == (
        "https://runbooks.example/rollguard#error_rate_trigger"
    )


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ("error_rate_trigger", "RollguardErrorRate"),
        ("runtime_security.unauthorized_access_attempts", "RollguardUnauthorizedAccessAttempts"),
        ("slow_checkout", "RollguardSlowCheckout"),
    ],
)
def test_alert_names(trigger: str, expected: str) -> None:
    assert alert_name(trigger) == expected


def test_invalid_policy_is_one_located_message_and_exit_2(
    tmp_path: Path, generate: Generate
) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text(
        "target:\n  deployment: web\nmetrics:\n  provider: replay\n  file: x.csv\n"
        "error_rate_trigger:\n  threshold: five percent\n"
    )
    result = generate(policy, tmp_path / "rules.yml")
    assert result.returncode == 2
    assert f"{policy}:7:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "rules.yml").exists()


def test_missing_baseline_file_is_named(tmp_path: Path, generate: Generate) -> None:
    shutil.copy(PROMTOOL_CASES / "seed-policy.yaml", tmp_path / "policy.yaml")
    result = generate(tmp_path / "policy.yaml", tmp_path / "rules.yml")
    assert result.returncode == 2
    assert "performance-baseline.json" in result.stderr
    assert "Traceback" not in result.stderr
