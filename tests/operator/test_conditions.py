"""A RollbackPolicy's status conditions are merged by type, as ``meta.SetStatusCondition``:
a JSON merge patch alone would replace the whole list."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from operator_support import apply, policy_status, rollback_policy, scrape_policy
from rollguard.operator.kube import ControllerApi, PolicyKey
from rollguard.operator.status import condition, merge_conditions
from servers.kube_cluster import KubeCluster

OLD = "2020-01-01T00:00:00Z"


def _at(kind: str, status: str, when: str, reason: str = "R") -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": "",
        "observedGeneration": 1,
        "lastTransitionTime": when,
    }


def test_a_condition_keeps_its_transition_time_until_its_status_changes() -> None:
    held = [_at("SpecValid", "True", OLD), _at("DeploymentFound", "False", OLD)]
    merged = merge_conditions(held, [_at("SpecValid", "True", "2026-01-01T00:00:00Z", "Again")])
    assert merged[0] == {**held[0], "reason": "Again"}  # same status: the old time stays
    assert merged[1] == held[1]  # a type not mentioned is left alone
    flipped = merge_conditions(merged, [_at("DeploymentFound", "True", "2026-01-02T00:00:00Z")])
    assert flipped[1]["lastTransitionTime"] == "2026-01-02T00:00:00Z"
    added = merge_conditions(flipped, [_at("Analysing", "True", "2026-01-03T00:00:00Z")])
    assert [found["type"] for found in added] == ["SpecValid", "DeploymentFound", "Analysing"]
    assert held[0]["reason"] == "R"  # the input is not changed in place


def test_status_writes_merge_conditions_on_the_real_api_server(
    rollbackpolicy_crd: KubeCluster, kube_namespace: str
) -> None:
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    nowhere = SimpleNamespace(url="http://127.0.0.1:9/metrics")  # no controller reads it
    apply(cluster, rollback_policy("shop", namespace, scrape_policy("shop", nowhere, nowhere)))
    key = PolicyKey(namespace, "shop")

    async def write(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
        await api.patch_status(key, status)
        found = policy_status(cluster, namespace, "shop")
        return {item["type"]: item for item in found["conditions"]}

    async def scenario() -> list[dict[str, dict[str, Any]]]:
        return [
            await write({"phase": "Idle", "conditions": [_at("SpecValid", "True", OLD)]}),
            await write({"conditions": [_at("DeploymentFound", "False", OLD)]}),
            await write({"conditions": [condition("SpecValid", True, "Accepted", "again", 2)]}),
            await write({"conditions": [condition("DeploymentFound", True, "Found", "", 2)]}),
            await write({"phase": "Watching"}),  # no conditions: the list is left alone
        ]

    with cluster.api_client() as client:
        api = ControllerApi(client, namespace=namespace)
        first, both, same, flipped, untouched = asyncio.run(scenario())
    assert set(first) == {"SpecValid"}
    assert set(both) == {"SpecValid", "DeploymentFound"}  # added, not replaced
    assert same["SpecValid"]["lastTransitionTime"] == OLD  # status unchanged: time kept
    assert same["SpecValid"]["message"] == "again"
    assert same["SpecValid"]["observedGeneration"] == 2
    assert flipped["DeploymentFound"]["status"] == "True"
    assert flipped["DeploymentFound"]["lastTransitionTime"] != OLD  # changed: a new time
    assert flipped["SpecValid"]["lastTransitionTime"] == OLD
    assert untouched == flipped
    assert api.requests["get"] == 4  # each conditions write read the list it merged into
