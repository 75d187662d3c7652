"""Helpers for the Kubernetes controller's tests: RollbackPolicy objects and the CRD."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from servers.kube_cluster import KubeCluster

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "rollguard"
CRD_FILE = CHART / "crds" / "rollbackpolicies.yaml"


def install_crd(cluster: KubeCluster, path: Path) -> None:
    """Apply the CRD (server-side) and wait until the API server serves it."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/rollbackpolicies.rollguard.dev"
    )


def rollback_policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A RollbackPolicy object."""
    return {
        "apiVersion": "rollguard.dev/v1alpha1",
        "kind": "RollbackPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def dry_run(cluster: KubeCluster, manifest: dict[str, Any]) -> tuple[bool, str]:
    """Server-side dry run of ``kubectl apply`` (strict field validation): accepted, and why not."""
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest), check=False
    )
    return result.returncode == 0, (result.stdout + result.stderr).strip()
