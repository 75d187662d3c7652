"""Helpers for the Kubernetes controller's tests: RollbackPolicy objects and the CRD."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily

from servers.exporter import ExporterServer
from servers.kube_cluster import KubeCluster
from servers.process import terminate
from support import wait_until

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


def policy_status(cluster: KubeCluster, namespace: str, name: str) -> dict[str, Any]:
    """A RollbackPolicy's status as the API server stores it ({} before the first write)."""
    found = json.loads(
        cluster.kubectl("get", "rollbackpolicy", name, "-n", namespace, "-o", "json").stdout
    )
    status: dict[str, Any] = found.get("status") or {}
    return status


def apply(cluster: KubeCluster, manifest: dict[str, Any]) -> None:
    """``kubectl apply`` (creates, or edits the spec: a new generation)."""
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))


def events(cluster: KubeCluster, namespace: str, kind: str, name: str) -> list[str]:
    """The reasons of the Events about one object."""
    listed = json.loads(
        cluster.kubectl(
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            f"involvedObject.kind={kind},involvedObject.name={name}",
            "-o",
            "json",
        ).stdout
    )
    return [str(item["reason"]) for item in listed["items"]]


class TrafficCollector:
    """Request counters that grow with time, as a serving version's exporter shows them:
    ``rate`` requests a second, ``error_share`` of them answered 500."""

    def __init__(self, rate: float, error_share: float) -> None:
        self.rate, self.error_share = rate, error_share
        self._started = time.monotonic()

    def collect(self) -> Iterator[CounterMetricFamily]:
        total = self.rate * (time.monotonic() - self._started)
        family = CounterMetricFamily("http_requests", "Requests served.", labels=["code"])
        family.add_metric(["200"], total * (1 - self.error_share))
        family.add_metric(["500"], total * self.error_share)
        yield family


@contextlib.contextmanager
def serving(error_share: float) -> Iterator[ExporterServer]:
    """A real exporter on loopback serving 50 requests/s with ``error_share`` errors."""
    registry = CollectorRegistry()
    registry.register(TrafficCollector(50.0, error_share))  # type: ignore[arg-type]
    server = ExporterServer()
    server.set(registry=registry)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scrape_policy(
    deployment: str, stable: ExporterServer, canary: ExporterServer, *, threshold: str = "5%"
) -> dict[str, Any]:
    """A RollbackPolicy spec: roll ``deployment`` back when the canary's errors pass
    ``threshold``, measured on the two exporters every half second."""
    return {
        "target": {
            "deployment": deployment,
            "executor": {
                "type": "kubernetes",
                "deployment": deployment,
                "rollout_timeout": "90s",
                "poll_interval": "0.2s",
            },
        },
        "metrics": {
            "provider": "scrape",
            "stable": stable.url,
            "canary": canary.url,
            "scrape_interval": "0.2s",
        },
        "analysis": {"interval": "0.5s", "min_requests": 1, "persistence": 2},
        "error_rate_trigger": {
            "threshold": threshold,
            "measurement_window": "2s",
            "action": "immediate_rollback",
        },
    }


class ControllerProcess:
    """``rollguard controller`` as a real process against the test cluster."""

    def __init__(
        self,
        cluster: KubeCluster,
        directory: Path,
        *,
        namespace: str,
        identity: str,
        audit: str,
        resync_seconds: float = 0.5,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.log = directory / f"{identity}.log"
        self.identity = identity
        command = [
            sys.executable,
            "-m",
            "rollguard",
            "controller",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--namespace",
            namespace,
            "--audit-url",
            audit,
            "--identity",
            identity,
            "--resync-seconds",
            f"{resync_seconds:g}",
            "--health-address",
            "127.0.0.1:0",
            *extra,
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=directory
            )

    def health_url(self, timeout: float = 60.0) -> str:
        """The probe listener's base URL, from the line the process logs when it listens."""

        def logged() -> str | None:
            self.check()
            found = re.search(r"health and metrics on (http://\S+)", self.log.read_text())
            return found.group(1) if found else None

        return wait_until(logged, timeout=timeout, what=f"{self.identity}'s probe listener")

    def check(self) -> None:
        """Fail with the log's tail when the process ended."""
        code = self.process.poll()
        if code is not None:
            raise AssertionError(
                f"controller {self.identity} exited {code}: {self.log.read_text()[-2000:]}"
            )

    def stop(self) -> None:
        terminate(self.process)
