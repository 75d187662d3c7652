"""The RollbackPolicy CRD: generated from the policy model, refusing what `policy check` refuses.

Each bad spec below is refused twice, by the same model: by ``parse_policy``
(what ``rollguard policy check`` runs) naming the field, and by the real API
server (server-side dry run of ``kubectl apply``) naming ``spec.<that field>``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from operator_support import CRD_FILE, dry_run, rollback_policy
from rollguard.errors import PolicyError
from rollguard.operator.crd import manifest_yaml
from rollguard.policy.load import parse_policy
from servers.kube_cluster import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
Spec = dict[str, Any]


def _seed() -> Spec:
    loaded: Spec = YAML(typ="safe").load((ROOT / "examples" / "seed-policy.yaml").read_text())
    return loaded


def _set(path: str, value: object) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        *parents, last = path.split(".")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return change


#: (what is wrong, how to make it so, the field both must name)
BAD = [
    ("an unknown key", _set("analysis.intervall", 5), "analysis.intervall"),
    (
        "a duration in fortnights",
        _set("error_rate_trigger.measurement_window", "5 fortnights"),
        "error_rate_trigger.measurement_window",
    ),
    ("a zero interval", _set("analysis.interval", 0), "analysis.interval"),
    (
        "an unreadable threshold",
        _set("latency_trigger.threshold", "fast"),
        "latency_trigger.threshold",
    ),
    ("an unknown action", _set("memory_trigger.action", "reboot"), "memory_trigger.action"),
    (
        "a negative limit",
        _set("security_trigger.high_vulnerabilities", "-1 maximum"),
        "security_trigger.high_vulnerabilities",
    ),
    (
        "a Deployment name Kubernetes refuses",
        _set("target.deployment", "Shop_Cart"),
        "target.deployment",
    ),
    (
        "an executor field of another type",
        _set("target.executor", {"type": "noop", "socket": "/s"}),
        "target.executor.socket",
    ),
    (
        "an executor without what its type needs",
        _set("target.executor", {"type": "haproxy", "backend": "be"}),
        "target.executor.socket",
    ),
    ("an unknown executor type", _set("target.executor", {"type": "ssh"}), "target.executor"),
    (
        "a secret pasted where its variable's name goes",
        _set("metrics.auth", {"bearer_token_env": "s3cr3t-t0ken"}),
        "metrics.auth.bearer_token_env",
    ),
    ("persistence below one", _set("analysis.persistence", 0), "analysis.persistence"),
    ("a weight above 100", _set("rollback.canary_weight", 101), "rollback.canary_weight"),
    (
        "an unknown inconclusive action",
        _set("analysis.inconclusive_action", "panic"),
        "analysis.inconclusive_action",
    ),
    ("a missing target", lambda spec: spec.pop("target"), "target"),
]


def test_the_chart_ships_the_generated_crd() -> None:
    assert CRD_FILE.read_text() == manifest_yaml(), "run: rollguard generate crd -f " + str(
        CRD_FILE
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_every_example_policy_is_a_valid_spec(
    rollbackpolicy_crd: KubeCluster, kube_namespace: str, example: Path
) -> None:
    spec = YAML(typ="safe").load(example.read_text())
    accepted, said = dry_run(rollbackpolicy_crd, rollback_policy("example", kube_namespace, spec))
    assert accepted, said


@pytest.mark.parametrize(("wrong", "change", "field"), BAD, ids=[case[0] for case in BAD])
def test_the_api_server_refuses_what_policy_check_refuses_at_the_same_field(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    wrong: str,
    change: Callable[[Spec], None],
    field: str,
) -> None:
    spec = copy.deepcopy(_seed())
    change(spec)
    text = _yaml(spec)
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, source="policy.yaml")
    assert field in [problem.field for problem in refused.value.problems], refused.value.problems
    accepted, said = dry_run(rollbackpolicy_crd, rollback_policy("bad", kube_namespace, spec))
    assert not accepted, f"the API server accepted {wrong}"
    assert f"spec.{field}" in said, said


def _yaml(spec: Spec) -> str:
    import io

    out = io.StringIO()
    YAML(typ="safe").dump(spec, out)
    return out.getvalue()
