"""``helm install`` of the chart into the real cluster (its pods simulated by kwok), and the
chart's RBAC proved least-privilege: a real controller running as the chart's
ServiceAccount (a token from the TokenRequest API) rolls a bad canary back, and the same
identity is refused what the chart does not grant. Then ``helm uninstall`` removes it all.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kube_support import NAME, image, roll_out, token_kubeconfig
from operator_support import (
    CHART,
    ControllerProcess,
    apply,
    policy_status,
    rollback_policy,
    scrape_policy,
    serving,
)
from servers.exporter import ExporterServer
from servers.kube_cluster import KubeCluster
from support import wait_until

DEADLINE = 120.0
#: What the chart installs in the release's namespace (the CRD and the ClusterRole live
#: cluster-wide).
NAMESPACED = (
    "deployment",
    "serviceaccount",
    "service",
    "poddisruptionbudget",
    "role",
    "rolebinding",
)


def _helm(helm: Path, cluster: KubeCluster, *args: str) -> str:
    done = subprocess.run(
        [str(helm), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def exporters() -> Iterator[tuple[ExporterServer, ExporterServer]]:
    with serving(0.0) as stable, serving(0.5) as canary:
        yield stable, canary


def _names(cluster: KubeCluster, namespace: str, release: str) -> dict[str, list[str]]:
    listed = json.loads(
        cluster.kubectl(
            "get", ",".join(NAMESPACED), "-n", namespace,
            "-l", f"app.kubernetes.io/instance={release}", "-o", "json",
        ).stdout
    )  # fmt: skip
    found: dict[str, list[str]] = {}
    for item in listed["items"]:
        found.setdefault(item["kind"], []).append(item["metadata"]["name"])
    return found


@pytest.mark.timeout(360)
def test_the_chart_installs_and_its_service_account_can_do_the_job_and_no_more(
    helm: Path,
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
    tmp_path: Path,
) -> None:
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    release = f"rg-{namespace[-8:]}".rstrip("-")
    cluster.kubectl(
        "create", "secret", "generic", "rollguard-audit", "-n", namespace,
        "--from-literal=url=postgresql://rollguard@audit.example/rollguard",
    )  # fmt: skip
    _helm(
        helm, cluster, "install", release, str(CHART), "--namespace", namespace,
        "--set", "replicaCount=1", "--wait", "--timeout", "120s",
    )  # fmt: skip
    try:
        installed = _names(cluster, namespace, release)
        assert set(installed) == {
            "Deployment", "ServiceAccount", "Service", "PodDisruptionBudget", "Role", "RoleBinding",
        }  # fmt: skip
        assert (
            json.loads(_helm(helm, cluster, "status", release, "-n", namespace, "-o", "json"))[
                "info"
            ]["status"]
            == "deployed"
        )

        as_chart = token_kubeconfig(cluster, namespace, release, tmp_path / "sa-kubeconfig")
        for verb, what in (
            ("get", "secrets"),  # never: the audit URL's Secret is mounted, not read
            ("delete", "deployments"),
            ("create", "pods"),
            ("delete", "rollbackpolicies.rollguard.dev"),
            ("patch", "rollbackpolicies.rollguard.dev"),  # only the status subresource
        ):
            said = cluster.kubectl(
                "auth", "can-i", verb, what, "-n", namespace, kubeconfig=as_chart, check=False
            )
            assert said.stdout.strip() == "no", f"{verb} {what}: {said.stdout}"
        refused = cluster.kubectl(
            "get", "secrets", "-n", namespace, kubeconfig=as_chart, check=False
        )
        assert refused.returncode != 0
        assert "forbidden" in refused.stderr
        elsewhere = cluster.kubectl(
            "auth", "can-i", "create", "leases", "-n", "default", kubeconfig=as_chart, check=False
        )
        assert elsewhere.stdout.strip() == "no"  # Leases only in the release's namespace

        roll_out(cluster, namespace, "shop:v1", "shop:v2")
        stable, canary = exporters
        apply(cluster, rollback_policy("shop", namespace, scrape_policy(NAME, stable, canary)))
        controller = ControllerProcess(
            SimpleKubeconfig(as_chart),  # type: ignore[arg-type]
            tmp_path,
            namespace=namespace,
            identity="as-chart",
            audit=f"sqlite:///{tmp_path / 'audit.db'}",
        )
        try:

            def rolled_back() -> dict[str, Any] | None:
                controller.check()
                status = policy_status(cluster, namespace, "shop")
                return status if status.get("phase") == "RolledBack" else None

            status = wait_until(rolled_back, timeout=DEADLINE, what="the rollback, as the chart")
        finally:
            controller.stop()
        assert status["controller"] == "as-chart"
        assert image(cluster, namespace) == "shop:v1"
        assert "answered 403" not in controller.log.read_text()  # nothing it needed was refused
    finally:
        _helm(helm, cluster, "uninstall", release, "--namespace", namespace, "--wait")
    assert _names(cluster, namespace, release) == {}
    gone = cluster.kubectl("get", "clusterrole", f"{release}-controller", check=False)
    assert gone.returncode != 0


class SimpleKubeconfig:
    """What ControllerProcess reads of a cluster: its kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
