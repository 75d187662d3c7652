"""The runtime_security options this package added to the policy are validated with locations."""

from __future__ import annotations

import pytest

from rollguard.errors import PolicyError
from rollguard.policy import parse_policy
from rollguard.policy.secrets import secret_env_names

HEAD = "target: {deployment: web}\nmetrics: {provider: replay, file: r.csv}\nruntime_security:\n"


def test_seed_block_with_sources_loads() -> None:
    policy = parse_policy(
        HEAD + "  unauthorized_access_attempts: 5 per minute\n"
        "  suspicious_patterns: immediate_detection\n"
        "  access_log: access.log\n"
        "  access_log_format: haproxy\n"
        "  falco_listen: 127.0.0.1:2801\n"
        "  falco_secret_env: FALCO_SECRET\n"
        "  falco_min_priority: Error\n"
    )
    spec = policy.runtime_security
    assert spec is not None
    assert spec.falco_min_priority == "error"
    assert spec.falco_listen == "127.0.0.1:2801"
    assert [rule.signal.value for rule in policy.rules] == [
        "unauthorized_per_minute",
        "suspicious_events",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("  falco_min_priority: severe\n", "expected a Falco priority"),
        ("  falco_listen: localhost\n", "expected host:port"),
        ("  falco_listen: 127.0.0.1:99999\n", "expected host:port"),
        ("  access_log_format: json\n", "combined"),
    ],
)
def test_bad_values_are_located(line: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        parse_policy(HEAD + line, source="p.yaml")
    assert caught.value.problems[0].line == 4


def test_a_falco_listener_needs_a_secret() -> None:
    with pytest.raises(PolicyError, match="falco_listen needs falco_secret_env") as caught:
        parse_policy(HEAD + "  falco_listen: 127.0.0.1:2801\n", source="p.yaml")
    problem = caught.value.problems[0]
    assert (problem.line, problem.field) == (4, "runtime_security.falco_listen")


def test_the_falco_secret_is_withheld_and_redacted_like_every_secret() -> None:
    policy = parse_policy(
        HEAD + "  suspicious_patterns: immediate_detection\n"
        "  falco_listen: 127.0.0.1:2801\n"
        "  falco_secret_env: FALCO_SECRET\n"
    )
    assert secret_env_names(policy)["FALCO_SECRET"] == "runtime_security.falco_secret_env"
