"""A Kubernetes executor without a router cannot isolate: ``policy check`` says so up front.

Isolation moves the canary's traffic to 0 % through the router; without one the
action's isolation step fails at the moment of an incident, so a policy asking
for it is refused where it asks, with the exit code of every invalid policy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollguard.errors import ExitCode, PolicyError
from rollguard.policy import Action, parse_policy
from support import Run

KUBERNETES = """\
target:
  deployment: shop
  executor: {type: kubernetes, deployment: shop}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}
"""

ROUTED = KUBERNETES.replace(
    "deployment: shop}", "deployment: shop, router: {kind: gateway-httproute, name: shop}}"
)


def test_policy_check_refuses_isolation_without_a_router_where_it_is_asked(
    tmp_path: Path, run_cli: Run
) -> None:
    policy = tmp_path / "shop.yaml"
    policy.write_text(KUBERNETES + "error_rate_trigger:\n  threshold: 5%\n  action: isolate\n")
    done = run_cli("policy", "check", str(policy))
    assert done.returncode == ExitCode.INVALID
    assert done.stdout.strip().splitlines() == [
        f"{policy}:7:3: error_rate_trigger.action: error_rate_trigger acts with "
        "traffic_isolation_and_rollback, which the kubernetes executor can only do through "
        "a traffic router: set target.executor.router (gateway-httproute, "
        "istio-virtualservice or nginx-ingress), or choose another action "
        "(e.g. immediate_rollback)"
    ]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("blocks", "line", "field", "default"),
    [
        (
            "runtime_security: {suspicious_patterns: immediate_detection, access_log: a.log}\n",
            6,
            "runtime_security",
            True,
        ),
        (
            "triggers:\n  slow:\n    signal: latency_p95_ms\n    above: 900\n"
            "    action: traffic_isolation_and_rollback\n",
            10,
            "triggers.slow.action",
            False,
        ),
    ],
)
def test_default_and_custom_triggers_are_located_too(
    blocks: str, line: int, field: str, default: bool
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(KUBERNETES + "error_rate_trigger: {threshold: 5%}\n" + blocks, source="p")
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (line, field)
    assert "target.executor.router" in problem.message
    assert ("(its default action)" in problem.message) is default


@pytest.mark.parametrize(
    "text",
    [
        ROUTED + "error_rate_trigger: {threshold: 5%, action: isolate}\n",
        KUBERNETES + "error_rate_trigger: {threshold: 5%}\n"
        "memory_trigger: {above: 500, action: isolate, dry_run: true}\n",
        KUBERNETES.replace(
            "{type: kubernetes, deployment: shop}", "{type: haproxy, socket: s, backend: b}"
        )
        + "error_rate_trigger: {threshold: 5%, action: isolate}\n",
    ],
    ids=["with-router", "dry-run-only", "haproxy"],
)
def test_an_executor_that_can_isolate_or_a_dry_run_passes(text: str) -> None:
    actions = {rule.action for rule in parse_policy(text).rules}
    assert Action.TRAFFIC_ISOLATION_AND_ROLLBACK in actions
