"""Policies load as the seed writes them, and every mistake is located."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rollguard.errors import PolicyError
from rollguard.policy import Action, Severity, load_policy, parse_policy
from rollguard.policy.units import Comparison
from rollguard.signals import Signal

ROOT = Path(__file__).resolve().parents[2]
SEED_POLICY = ROOT / "examples" / "seed-policy.yaml"

HEADER = """\
target: {deployment: shop}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}
"""


def test_every_seed_block_parses_to_the_right_values() -> None:
    policy = load_policy(SEED_POLICY)
    rules = {rule.name: rule for rule in policy.rules}

    error = rules["error_rate_trigger"]
    assert (error.signal, error.threshold.value, error.threshold.comparison) == (
        Signal.ERROR_RATE_PERCENT,
        5.0,
        Comparison.ABOVE,
    )
    assert error.window_seconds == 300
    assert (error.action, error.severity, error.notification) == (
        Action.IMMEDIATE_ROLLBACK,
        Severity.CRITICAL,
        "critical_alert",
    )

    latency = rules["latency_trigger"]
    assert latency.signal is Signal.LATENCY_P95_MS
    assert (latency.threshold.value, latency.threshold.comparison) == (
        30.0,
        Comparison.INCREASE_PERCENT,
    )
    assert latency.threshold.reference == "baseline"
    assert latency.window_seconds == 180
    assert latency.action is Action.GRADUAL_ROLLBACK
    assert latency.notification == "warning_alert"

    memory = rules["memory_trigger"]
    assert (memory.threshold.value, memory.threshold.comparison) == (50.0, Comparison.INCREASE)
    assert memory.window_seconds == 120
    assert memory.action is Action.SCALING_AND_ROLLBACK

    unauthorized = rules["runtime_security.unauthorized_access_attempts"]
    assert unauthorized.signal is Signal.UNAUTHORIZED_PER_MINUTE
    assert unauthorized.threshold.value == 5.0
    assert unauthorized.action is Action.TRAFFIC_ISOLATION_AND_ROLLBACK
    assert unauthorized.notification == "security_incident"
    assert rules["runtime_security.suspicious_patterns"].persistence == 1

    gate = policy.security_trigger
    assert gate is not None
    assert (gate.critical_vulnerabilities, gate.high_vulnerabilities) == (0, 10)
    assert gate.action is Action.DEPLOYMENT_BLOCK  # the seed's immediate_deployment_block
    assert gate.notification == "security_alert"


def test_the_plain_form_means_the_same_as_the_seed_form() -> None:
    seed = parse_policy(
        HEADER + "error_rate_trigger: {threshold: 5%, measurement_window: 5 minutes}"
    )
    plain = parse_policy(HEADER + "error_rate_trigger: {threshold_percent: 5, window: 5m}")
    assert seed.rules == plain.rules


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (
            "error_rate_trigger:\n  threshold: 5%\n  windw: 5m\n",
            5,
            "error_rate_trigger.windw",
            "unknown key",
        ),
        (
            "error_rate_trigger:\n  threshold: 5%\n  window: -5m\n",
            5,
            "error_rate_trigger.window",
            "duration",
        ),
        ("latency_trigger:\n  threshold: fast\n", 4, "latency_trigger.threshold", "cannot read"),
        ("latency_trigger:\n  window: 1m\n", 3, "latency_trigger", "exactly one"),
        (
            "error_rate_trigger:\n  threshold: 5%\n  action: explode\n",
            5,
            "error_rate_trigger.action",
            "unknown action",
        ),
        ("bogus_section: 1\n", 3, "bogus_section", "unknown key"),
        ("rollback:\n  steps: [25, 50]\n", 4, "rollback.steps", "last rollback step must be 100"),
        (
            "error_rate_trigger:\n  threshold: 5%\n  detection: {tolerance_points: .inf}\n",
            5,
            "error_rate_trigger.detection.tolerance_points",
            "finite",
        ),
        ("memory_trigger:\n  above: .inf\n", 4, "memory_trigger.above", "finite"),
        (
            'audit:\n  url: "mysql://db/audit"\n',
            4,
            "audit.url",
            "unsupported scheme 'mysql'; accepted schemes: sqlite (sqlite:///PATH), postgresql",
        ),
        (
            'audit:\n  key_env: "9f2c+Qk/x7=="\n',
            4,
            "audit.key_env",
            "the name of an environment variable holding the key",
        ),
        (
            "memory_trigger: {above: 500}\n"
            "triggers:\n  memory_trigger: {signal: memory_mb, above: 600}\n",
            5,
            "triggers.memory_trigger",
            "two triggers are named 'memory_trigger'",
        ),
    ],
)
def test_each_problem_names_its_line_and_field(
    text: str, line: int, field: str, words: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(HEADER + text, source="p.yaml")
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.field) == ("p.yaml", line, field)
    assert words in problem.message


def test_unknown_executor_type_is_an_error_not_a_fallback() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            "target: {deployment: x, executor: {type: magic}}\n" + HEADER.split("\n", 1)[1]
        )
    assert "unknown type 'magic'" in str(caught.value)


def test_yaml_syntax_errors_are_located() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(HEADER + "error_rate_trigger: {threshold: 5%\n", source="bad.yaml")
    assert caught.value.problems[0].line >= 3
    assert caught.value.problems[0].field == "(yaml)"


def test_relative_trigger_without_a_baseline_says_what_to_set() -> None:
    with pytest.raises(PolicyError, match=r"baseline\.file is not set"):
        parse_policy(HEADER + "latency_trigger: {threshold: 30% increase from baseline}")


@pytest.mark.parametrize(
    ("triggers", "words"),
    [
        ("", "no trigger"),
        ("error_rate_trigger: {threshold: 5%, dry_run: true}\n", "every trigger is dry_run"),
        (
            "runtime_security: {unauthorized_access_attempts: 5 per minute, dry_run: true}\n"
            "security_trigger: {dry_run: true}\n",
            "every trigger is dry_run",
        ),
    ],
)
def test_a_policy_that_can_never_act_is_invalid(triggers: str, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(HEADER + triggers, source="p.yaml")
    assert words in str(caught.value)


def test_one_acting_trigger_beside_dry_runs_is_enough() -> None:
    policy = parse_policy(
        HEADER + "error_rate_trigger: {threshold: 5%, dry_run: true}\nsecurity_trigger: {}\n"
    )
    assert [rule.dry_run for rule in policy.rules] == [True]


def test_policy_check_cli_prints_one_line_per_problem_and_exits_2(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEADER + "error_rate_trigger:\n  threshold: 5%\n  windw: 5m\nextra: 1\n")
    done = subprocess.run(
        [*rollguard_cmd, "policy", "check", str(SEED_POLICY), str(bad)],
        capture_output=True,
        text=True,
        env=cli_env,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stdout.strip().splitlines()
    assert lines[0].endswith("seed-policy.yaml: ok")
    assert f"{bad}:5:3: error_rate_trigger.windw: unknown key" in lines[1]
    assert f"{bad}:6:1: extra: unknown key" in lines[2]
    assert "Traceback" not in done.stderr


def test_policy_explain_says_each_trigger_in_a_sentence(
    rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    done = subprocess.run(
        [*rollguard_cmd, "policy", "explain", str(SEED_POLICY)],
        capture_output=True,
        text=True,
        env=cli_env,
        check=True,
    )
    assert "error_rate_trigger: when the canary's error rate" in done.stdout
    assert "measured over 5 minutes, goes above 5%" in done.stdout
    assert "rises more than 30% above the baseline file" in done.stdout
    assert "tells security_incident" in done.stdout
