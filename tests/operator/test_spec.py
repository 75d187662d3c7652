"""What a RollbackPolicy may ask for: nothing that runs or reads on the controller's machine,
nothing outside its own namespace."""

from __future__ import annotations

from typing import Any

import pytest

from rollguard.operator.spec import parse
from rollguard.policy.model import KubernetesExecutorSpec


def _resource(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "target": {"deployment": "shop", "executor": {"type": "noop"}},
        "metrics": {"provider": "prometheus", "address": "http://prometheus:9090"},
        "error_rate_trigger": {"threshold": "5%"},
        **changes,
    }
    return {"metadata": {"namespace": "team-a", "name": "shop", "generation": 3}, "spec": spec}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"target": {"deployment": "shop", "executor": {"type": "command", "rollback": ["x"]}}},
            "spec.target.executor.type",
        ),
        ({"metrics": {"provider": "replay", "file": "/etc/passwd"}}, "spec.metrics.provider"),
        (
            {"metrics": {"provider": "command", "queries": {"error_rate_percent": ["id"]}}},
            "spec.metrics.provider",
        ),
        ({"baseline": {"file": "/etc/shadow"}}, "spec.baseline.file"),
    ],
)
def test_what_would_run_or_read_on_the_controller_is_refused(
    changes: dict[str, Any], field: str
) -> None:
    parsed = parse(_resource(**changes))
    assert parsed.policy is None
    assert parsed.problem is not None
    assert parsed.problem.startswith(field), parsed.problem


def test_a_kubernetes_executor_acts_in_the_policys_namespace_only() -> None:
    elsewhere = {"type": "kubernetes", "deployment": "shop", "namespace": "kube-system"}
    parsed = parse(_resource(target={"deployment": "shop", "executor": elsewhere}))
    assert parsed.policy is not None, parsed.problem
    executor = parsed.policy.target.executor
    assert isinstance(executor, KubernetesExecutorSpec)
    assert executor.namespace == "team-a"
    assert parsed.generation == 3


def test_a_spec_the_model_refuses_names_the_field() -> None:
    parsed = parse(_resource(analysis={"interval": "5 fortnights"}))
    assert parsed.policy is None
    assert "spec.analysis.interval" in (parsed.problem or "")
