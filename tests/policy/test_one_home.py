"""Small rules kept once in the policy layer and used everywhere they apply."""

from __future__ import annotations

from pathlib import Path

import pytest

import rollguard
from rollguard.policy.actions import gradual_canary_percent
from rollguard.policy.load import parse_policy
from rollguard.policy.triggers import FALCO_PRIORITIES, falco_priority
from rollguard.security.falco import priority_rank

PACKAGE = Path(rollguard.__file__).parent


def _files_containing(text: str) -> list[str]:
    return sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if text in path.read_text()
    )


@pytest.mark.parametrize(
    ("start", "steps", "weights"),
    [(20, [25, 50, 75, 100], [15, 10, 5, 0]), (40, [25, 50, 75, 100], [30, 20, 10, 0])],
)
def test_a_gradual_rollback_steps_through_shares_of_the_canarys_traffic(
    start: int, steps: list[int], weights: list[int]
) -> None:
    assert [gradual_canary_percent(start, step) for step in steps] == weights


def test_the_gradual_step_formula_has_one_home() -> None:
    assert _files_containing("* (100 -") == ["policy/actions.py"]


@pytest.mark.parametrize(
    ("spelling", "name"),
    [("Warning", "warning"), ("warn", "warning"), ("info", "informational"), ("crit", "critical")],
)
def test_the_policy_and_the_falco_receiver_read_a_priority_alike(spelling: str, name: str) -> None:
    policy = parse_policy(
        "target: {deployment: shop}\n"
        "metrics: {provider: replay, file: s.csv}\n"
        "error_rate_trigger: {threshold: 5%}\n"
        f"runtime_security: {{suspicious_patterns: immediate_detection, "
        f"falco_listen: '127.0.0.1:2801', falco_secret_env: FALCO_SECRET, "
        f"falco_min_priority: {spelling}}}\n"
    )
    assert policy.runtime_security is not None
    assert policy.runtime_security.falco_min_priority == falco_priority(spelling) == name
    assert priority_rank(spelling) == FALCO_PRIORITIES.index(name)


def test_falcos_priority_list_has_one_home() -> None:
    assert _files_containing('"informational",') == ["policy/triggers.py"]
