"""The Helm chart, checked with the real helm (tools/helm/build.sh) and the real API server:
``helm lint``, and ``helm template`` (with the CRD) accepted by a server-side dry run."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from operator_support import CHART
from servers.kube_cluster import KubeCluster


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


def _render(helm: Path, *settings: str) -> list[dict[str, Any]]:
    rendered = _helm(helm, "template", "rg", str(CHART), "--namespace", "ops", *settings)
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, [doc["kind"] for doc in docs]
    return found[0]


def test_the_probes_and_the_metrics_service_point_at_the_controllers_listener(
    helm: Path,
) -> None:
    docs = _render(helm)
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert f"--health-address=0.0.0.0:{ports['http-probes']}" in container["args"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-probes"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-probes"}
    service = _one(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http-probes"
    pod_labels = _one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not [doc for doc in docs if doc["kind"] == "ServiceMonitor"]  # off by default


def test_the_service_monitor_and_secret_variables_are_rendered_when_asked(helm: Path) -> None:
    docs = _render(
        helm,
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.serviceMonitor.labels.release=kube-prometheus",
        "--set", "secretEnv[0].name=PROMETHEUS_TOKEN",
        "--set", "secretEnv[0].secretName=prometheus-reader",
        "--set", "secretEnv[0].key=token",
    )  # fmt: skip
    monitor = _one(docs, "ServiceMonitor")
    service = _one(docs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}
    (container,) = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env["PROMETHEUS_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "prometheus-reader", "key": "token"}
    }


def test_a_service_monitor_without_its_service_is_refused(helm: Path) -> None:
    done = subprocess.run(
        [str(helm), "template", "rg", str(CHART),
         "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.service.enabled=false"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "metrics.serviceMonitor.enabled needs metrics.service.enabled" in done.stderr


def test_every_flag_the_chart_passes_is_one_the_controller_takes(helm: Path) -> None:
    """The chart's args and ``rollguard controller``'s options cannot drift apart."""
    import typer.main

    from rollguard.cli.main import app

    command: Any = typer.main.get_command(app)
    controller = command.commands["controller"]
    known = {opt for param in controller.params for opt in param.opts}
    docs = _render(helm, "--set", "controller.watchNamespace=shop")
    (container,) = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "controller"
    flags = [arg.split("=", 1)[0] for arg in container["args"][1:]]
    assert "--namespace" in flags
    assert set(flags) <= known, set(flags) - known
