"""Fixtures for the Kubernetes controller: the RollbackPolicy CRD on the session's cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from operator_support import CRD_FILE, install_crd
from servers.kube_cluster import KubeCluster
from servers.postgres import postgres_server
from support import unavailable

__all__ = ["postgres_server", "rollbackpolicy_crd"]


@pytest.fixture(scope="session")
def rollbackpolicy_crd(kube_cluster: KubeCluster) -> KubeCluster:
    """The chart's CRD, applied (server-side, idempotent) and established."""
    install_crd(kube_cluster, CRD_FILE)
    return kube_cluster


@pytest.fixture(scope="session")
def helm() -> Path:
    """The real helm built by tools/helm/build.sh."""
    cache = os.environ.get("ROLLGUARD_TOOLS_CACHE") or str(Path.home() / ".cache/rollguard-tools")
    binary = Path(cache) / "helm" / "dist" / "bin" / "helm"
    if not binary.exists():
        unavailable(f"no helm at {binary}: run tools/helm/build.sh")
    return binary
