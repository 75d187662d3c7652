"""`rollguard controller` on the real control plane: RollbackPolicies reconciled end to end.

The controller runs as a real process outside the cluster (as controllers are
developed); the Deployment is real (its pods simulated by kwok); the metrics
are two real exporters on loopback. Oracles are the cluster's own word
(``kubectl get``), never the controller's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kube_support import NAME, history, image, roll_out
from operator_support import (
    ControllerProcess,
    apply,
    events,
    policy_status,
    rollback_policy,
    scrape_policy,
    serving,
)
from rollguard.audit.factory import open_store
from servers.exporter import ExporterServer
from servers.kube_cluster import KubeCluster
from support import wait_until

#: A rollback waits for the restored ReplicaSet's simulated pods: minutes under load at worst.
DEADLINE = 120.0


@pytest.fixture
def exporters() -> Iterator[tuple[ExporterServer, ExporterServer]]:
    """Stable answering no errors, the canary half of its requests with 500."""
    with serving(0.0) as stable, serving(0.5) as canary:
        yield stable, canary


@pytest.fixture
def controller(
    rollbackpolicy_crd: KubeCluster, kube_namespace: str, tmp_path: Path
) -> Iterator[ControllerProcess]:
    process = ControllerProcess(
        rollbackpolicy_crd,
        tmp_path,
        namespace=kube_namespace,
        identity="replica-a",
        audit=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    yield process
    process.stop()


def _phase(
    cluster: KubeCluster, namespace: str, name: str, process: ControllerProcess, phase: str
) -> dict[str, Any] | None:
    process.check()
    status = policy_status(cluster, namespace, name)
    return status if status.get("phase") == phase else None


def test_a_bad_canary_is_rolled_back_and_reported_on_the_policy(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
    controller: ControllerProcess,
    tmp_path: Path,
) -> None:
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    roll_out(cluster, namespace, "shop:v1", "shop:v2")
    stable, canary = exporters
    apply(cluster, rollback_policy("shop", namespace, scrape_policy(NAME, stable, canary)))

    status = wait_until(
        lambda: _phase(cluster, namespace, "shop", controller, "RolledBack"),
        timeout=DEADLINE,
        what="the policy's phase RolledBack",
    )
    assert image(cluster, namespace) == "shop:v1"
    assert status["revision"] == "2"
    assert status["settledRevision"] == str(max(history(cluster, namespace)))
    assert status["decision"]["action"] == "immediate_rollback"
    assert status["decision"]["trigger"] == "error_rate_trigger"
    assert status["controller"] == "replica-a"
    assert "RolledBack" in events(cluster, namespace, "RollbackPolicy", "shop")
    assert "RolledBack" in events(cluster, namespace, "Deployment", NAME)
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}", create=False)
    try:
        assert store.verify().ok
        kinds = [entry.record.kind for entry in store.list(deployment=NAME)]
    finally:
        store.close()
    assert "action_result" in kinds


def test_an_edited_policy_is_picked_up_without_a_restart(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
    controller: ControllerProcess,
) -> None:
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    roll_out(cluster, namespace, "shop:v1", "shop:v2")
    stable, canary = exporters
    lenient = scrape_policy(NAME, stable, canary, threshold="80%")
    apply(cluster, rollback_policy("shop", namespace, lenient))

    def judged_healthy() -> bool:
        status = _phase(cluster, namespace, "shop", controller, "Watching")
        return bool(status and status.get("evaluations", 0) >= 1)

    wait_until(judged_healthy, timeout=DEADLINE, what="an evaluation under the 80% threshold")
    assert image(cluster, namespace) == "shop:v2"

    strict = scrape_policy(NAME, stable, canary, threshold="5%")
    apply(cluster, rollback_policy("shop", namespace, strict))
    status = wait_until(
        lambda: _phase(cluster, namespace, "shop", controller, "RolledBack"),
        timeout=DEADLINE,
        what="the edited policy to roll back",
    )
    assert status["observedGeneration"] == 2
    assert image(cluster, namespace) == "shop:v1"


def test_what_the_controller_refuses_is_said_on_the_policy(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
    controller: ControllerProcess,
) -> None:
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    stable, canary = exporters
    commands = scrape_policy(NAME, stable, canary)
    commands["target"]["executor"] = {"type": "command", "rollback": ["rm", "-rf", "/"]}
    apply(cluster, rollback_policy("commands", namespace, commands))
    apply(cluster, rollback_policy("nothing", namespace, scrape_policy("absent", stable, canary)))

    def condition(name: str) -> dict[str, Any] | None:
        status = _phase(cluster, namespace, name, controller, "Idle")
        found = (status or {}).get("conditions") or [{}]
        return found[0] if found[0].get("status") == "False" else None

    refused = wait_until(lambda: condition("commands"), timeout=DEADLINE, what="SpecValid")
    assert refused["type"] == "SpecValid"
    assert "spec.target.executor.type" in refused["message"]
    missing = wait_until(lambda: condition("nothing"), timeout=DEADLINE, what="DeploymentFound")
    assert missing["type"] == "DeploymentFound"
    assert "'absent'" in missing["message"]
