"""``rollguard watch`` and ``rollguard drill --execute`` end to end on the real control plane.

The Deployment ``shop`` really rolled out from shop:v1 to shop:v2 on kwok's nodes,
whose pods run no process. The metrics come from real processes instead: the
demo service's stable (v1) and canary (v2) versions, under load, scraped by a real
Prometheus that labels them ``version="stable"`` and ``version="canary"``. A fault
is injected into the canary process; rollguard, running as the ServiceAccount of
deploy/rbac.yaml, rolls the Deployment back, and its audit trail verifies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from kube_support import get, grant_rbac, image, roll_out
from rollguard.audit.factory import open_store
from rollguard.demo import service
from rollguard.demo.servers import ProcessServer
from servers.kube_cluster import KubeCluster
from servers.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from servers.traffic import Traffic
from support import Run, wait_until

pytestmark = pytest.mark.real_server

CANARY_REQUESTS = 'http_requests_total{job="demo",version="canary"}'


@dataclass
class Release:
    """shop:v2 rolled out over shop:v1, its two versions' processes and their Prometheus."""

    namespace: str
    kubeconfig: Path
    stable: ProcessServer
    canary: ProcessServer
    prometheus: PrometheusServer


@pytest.fixture
def release(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> Iterator[Release]:
    roll_out(kube_cluster, kube_namespace, "shop:v1", "shop:v2")
    kubeconfig = grant_rbac(kube_cluster, kube_namespace, tmp_path / "rollguard.kubeconfig")
    stable = service.start("v1", role="stable")
    try:
        canary = service.start("v2", role="canary")
        try:
            targets = [
                ScrapeTarget(urlparse(server.url).netloc, {"version": version}, job="demo")
                for version, server in (("stable", stable), ("canary", canary))
            ]
            with running_prometheus(tmp_path / "prometheus", targets) as prometheus:
                yield Release(kube_namespace, kubeconfig, stable, canary, prometheus)
        finally:
            canary.stop()
    finally:
        stable.stop()


def write_policy(release: Release, directory: Path) -> Path:
    """Error rate from Prometheus, acted on through the Kubernetes executor."""
    policy = directory / "policy.yaml"
    policy.write_text(f"""
name: shop-on-kubernetes
target:
  deployment: shop
  executor:
    type: kubernetes
    deployment: shop
    namespace: {release.namespace}
    kubeconfig: {release.kubeconfig}
    rollout_timeout: 60s
    poll_interval: 0.5s
metrics:
  provider: prometheus
  address: {release.prometheus.url}
  stable_selector: 'job="demo",version="stable"'
  canary_selector: 'job="demo",version="canary"'
  timeout: 2s
analysis: {{interval: 0.5s, min_requests: 10, persistence: 2}}
error_rate_trigger:
  threshold: 5%
  measurement_window: 10s
  action: immediate_rollback
""")
    return policy


def audit_trail(directory: Path) -> list[tuple[str, str, str]]:
    """(kind, action, outcome) of every entry in the trail next to the policy."""
    store = open_store(f"sqlite:///{directory / '.rollguard' / 'audit.db'}")
    try:
        return [(e.record.kind, e.record.action, e.record.outcome) for e in store.list()]
    finally:
        store.close()


@pytest.mark.timeout(240)
def test_watch_rolls_the_deployment_back_when_the_canary_fails(
    kube_cluster: KubeCluster,
    release: Release,
    tmp_path: Path,
    run_cli: Run,
) -> None:
    policy = write_policy(release, tmp_path)
    with Traffic(release.stable.url), Traffic(release.canary.url):
        wait_until(
            lambda: (release.prometheus.value(f"sum(increase({CANARY_REQUESTS}[10s]))") or 0) > 20,
            timeout=60,
            interval=0.2,
            what="Prometheus to see canary traffic",
        )
        httpx.post(f"{release.canary.url}/simulate/error_rate/50", timeout=5).raise_for_status()
        done = run_cli("watch", "--policy", str(policy), "--for", "90s", "-o", "json", timeout=110)

    assert done.returncode == 1, done.stdout + done.stderr  # 1: rolled back
    assert image(kube_cluster, release.namespace) == "shop:v1"
    deployment = get(kube_cluster, release.namespace, "deployment")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    status = deployment["status"]
    assert status["updatedReplicas"] == status["availableReplicas"] == status["replicas"] == 2
    trail = audit_trail(tmp_path)
    assert ("action_result", "immediate_rollback", "success") in trail
    assert trail[-1][0] == "deployment_end"
    verified = run_cli("audit", "verify", "--policy", str(policy), timeout=110)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_drill_execute_rolls_the_real_deployment_back_and_records_it(
    kube_cluster: KubeCluster,
    release: Release,
    tmp_path: Path,
    run_cli: Run,
) -> None:
    policy = write_policy(release, tmp_path)
    done = run_cli("drill", "--policy", str(policy), "--execute", timeout=110)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "executed on the real target" in done.stdout
    assert image(kube_cluster, release.namespace) == "shop:v1"
    assert ("drill", "immediate_rollback", "success") in audit_trail(tmp_path)
    verified = run_cli("audit", "verify", "--policy", str(policy), timeout=110)
    assert verified.returncode == 0, verified.stdout + verified.stderr
