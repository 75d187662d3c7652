"""Fixtures for the Kubernetes controller: the RollbackPolicy CRD on the session's cluster."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from operator_support import CRD_FILE, install_crd
from servers.kube_cluster import KubeCluster
from servers.postgres import postgres_server
from servers.tcp_gate import TcpGate, gate
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


@pytest.fixture
def cut_off(rollbackpolicy_crd: KubeCluster, tmp_path: Path) -> Iterator[tuple[TcpGate, Path]]:
    """A gate in front of the API server, and a kubeconfig that goes through it."""
    config = json.loads(rollbackpolicy_crd.kubeconfig.read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    assert server.hostname is not None
    assert server.port is not None
    with gate((server.hostname, server.port)) as link:
        config["clusters"][0]["cluster"]["server"] = f"https://{server.hostname}:{link.port}"
        path = tmp_path / "gated-kubeconfig"
        path.write_text(json.dumps(config))
        yield link, path
