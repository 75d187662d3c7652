"""Fixtures for the Kubernetes controller: the RollbackPolicy CRD on the session's cluster."""

from __future__ import annotations

import pytest

from operator_support import CRD_FILE, install_crd
from servers.kube_cluster import KubeCluster
from servers.postgres import postgres_server

__all__ = ["postgres_server", "rollbackpolicy_crd"]


@pytest.fixture(scope="session")
def rollbackpolicy_crd(kube_cluster: KubeCluster) -> KubeCluster:
    """The chart's CRD, applied (server-side, idempotent) and established."""
    install_crd(kube_cluster, CRD_FILE)
    return kube_cluster
