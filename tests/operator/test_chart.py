"""The Helm chart, checked with the real helm (tools/helm/build.sh) and the real API server:
``helm lint``, and ``helm template`` (with the CRD) accepted by a server-side dry run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from operator_support import CHART
from servers.kube_cluster import KubeCluster
from support import unavailable


@pytest.fixture(scope="module")
def helm() -> Path:
    cache = os.environ.get("ROLLGUARD_TOOLS_CACHE") or str(Path.home() / ".cache/rollguard-tools")
    binary = Path(cache) / "helm" / "dist" / "bin" / "helm"
    if not binary.exists():
        unavailable(f"no helm at {binary}: run tools/helm/build.sh")
    return binary


def _helm(helm: Path, *args: str) -> str:
    done = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_chart_lints(helm: Path) -> None:
    said = _helm(helm, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in said


def test_the_rendered_chart_is_accepted_by_the_api_server(
    helm: Path, kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    rendered = _helm(
        helm,
        "template",
        "rollguard",
        str(CHART),
        "--include-crds",
        "--namespace",
        kube_namespace,
        "--set",
        "replicaCount=3",
    )
    for kind in ("CustomResourceDefinition", "Deployment", "PodDisruptionBudget", "ClusterRole"):
        assert f"kind: {kind}" in rendered
    done = kube_cluster.kubectl(
        "apply", "--dry-run=server", "-n", kube_namespace, "-f", "-", stdin=rendered, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
