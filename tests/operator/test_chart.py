"""The Helm chart, checked with the real helm (tools/helm/build.sh) and the real API server:
``helm lint``, and ``helm template`` (with the CRD) accepted by a server-side dry run; the
opt-in router rules (``rbac.routers``) are the executor's own, and let the controller's
ServiceAccount set each router's weights only when its kind is listed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from kube_support import (
    ROUTERS,
    can,
    create,
    executor,
    rbac_manifests,
    roll_out,
    run,
    token_kubeconfig,
    weights,
)
from operator_support import CHART
from rollguard.errors import ExecutorError
from rollguard.executors.kubernetes_api import HTTPROUTE, INGRESS, VIRTUALSERVICE, Kind
from rollguard.policy.model import KubernetesRouterSpec
from servers.kube_cluster import KubeCluster
from support import wait_until

#: Every router kind a policy can name, and the resource the executor drives for it.
ROUTER_KINDS: tuple[str, ...] = get_args(KubernetesRouterSpec.model_fields["kind"].annotation)
RESOURCE_OF: dict[str, Kind] = {
    "gateway-httproute": HTTPROUTE,
    "istio-virtualservice": VIRTUALSERVICE,
    "nginx-ingress": INGRESS,
}
EVERY_ROUTER = "rbac.routers={" + ",".join(ROUTER_KINDS) + "}"


def _helm(helm: Path, *args: str) -> str:
    done = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_chart_lints(helm: Path) -> None:
    said = _helm(helm, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in said


@pytest.mark.parametrize("routers", [(), ("--set", EVERY_ROUTER)], ids=["default", "routers"])
def test_the_rendered_chart_is_accepted_by_the_api_server(
    helm: Path, kube_cluster: KubeCluster, kube_namespace: str, routers: tuple[str, ...]
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
        *routers,
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


def _controller_rules(helm: Path, *settings: str) -> list[dict[str, Any]]:
    role = _one(_render(helm, *settings), "ClusterRole")
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def _executor_rule(kind: Kind) -> dict[str, Any]:
    """deploy/rbac.yaml's rule for ``kind``: proven enough, with no verb to spare, by
    tests/executors/test_kubernetes_rbac.py running the executor under it."""
    (rule,) = [
        rule
        for doc in rbac_manifests()
        if doc["kind"] == "Role"
        for rule in doc["rules"]
        if rule["resources"] == [kind.plural]
    ]
    assert rule["apiGroups"] == [kind.group]
    return dict(rule)


def test_router_rules_are_off_by_default_and_each_kind_adds_its_executor_rule_only(
    helm: Path,
) -> None:
    default = _controller_rules(helm)
    granted = {resource for rule in default for resource in rule["resources"]}
    assert not granted & {kind.plural for kind in RESOURCE_OF.values()}
    assert set(ROUTER_KINDS) == set(RESOURCE_OF)  # a new router kind needs its rule here
    for router in ROUTER_KINDS:
        rules = _controller_rules(helm, "--set", f"rbac.routers={{{router}}}")
        assert rules[: len(default)] == default
        assert rules[len(default) :] == [_executor_rule(RESOURCE_OF[router])]
    every = _controller_rules(helm, "--set", EVERY_ROUTER, "--set", EVERY_ROUTER)
    assert every[len(default) :] == [_executor_rule(RESOURCE_OF[r]) for r in ROUTER_KINDS]
    listed_twice = _controller_rules(helm, "--set", "rbac.routers={nginx-ingress,nginx-ingress}")
    assert listed_twice[len(default) :] == [_executor_rule(INGRESS)]


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("rbac.routers={traefik}", 'unknown router kind "traefik" (one of: gateway-httproute, '),
        ("rbac.routers=nginx-ingress", "rbac.routers: expected a list of router kinds"),
    ],
)
def test_a_router_setting_the_chart_cannot_grant_is_refused(
    helm: Path, setting: str, said: str
) -> None:
    done = subprocess.run(
        [str(helm), "template", "rg", str(CHART), "--set", setting],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert said in done.stderr


@pytest.fixture
def release(kube_cluster: KubeCluster, kube_namespace: str) -> Iterator[str]:
    """A release name of the test's own; the cluster-wide RBAC objects the chart names after
    it (namespace deletion does not reach them) are deleted after the test."""
    name = f"rg-{kube_namespace[-8:]}".rstrip("-")
    yield name
    kube_cluster.kubectl(
        "delete", "--ignore-not-found",
        f"clusterrole/{name}-controller", f"clusterrolebinding/{name}-controller",
    )  # fmt: skip


def test_the_chart_lets_its_service_account_set_a_routers_weights_only_when_listed(
    helm: Path,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    router_crds: list[str],
    release: str,
    tmp_path: Path,
) -> None:
    """The executor, authenticated as the chart's ServiceAccount (a TokenRequest token), is
    refused every router by the default chart and writes each one's weights once
    ``rbac.routers`` lists every kind; the API server's RBAC authorizer decides."""
    cluster, namespace = kube_cluster, kube_namespace

    def apply_chart(*settings: str) -> None:
        rendered = _helm(
            helm, "template", release, str(CHART), "--namespace", namespace,
            "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml",
            *settings,
        )  # fmt: skip
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=rendered)

    def set_weight(router: str, kubeconfig: Path) -> None:
        spec = {"kind": router, **ROUTERS[router][2]}
        made = executor(cluster, namespace, kubeconfig=kubeconfig, router=spec)
        result = run(made, "set_canary_weight", percent=40)
        assert result.ok, result.detail

    def allowed(router: str) -> bool:
        plural = RESOURCE_OF[router].plural
        return can(cluster, namespace, "patch", plural, account=release)

    apply_chart()
    roll_out(cluster, namespace, "shop:1.0")
    for router in ROUTER_KINDS:
        create(cluster, namespace, ROUTERS[router][1]())
    kubeconfig = token_kubeconfig(cluster, namespace, release, tmp_path / "chart.kubeconfig")
    for router in ROUTER_KINDS:
        assert not allowed(router)
        with pytest.raises(ExecutorError, match=f"forbids get on {RESOURCE_OF[router].plural}"):
            set_weight(router, kubeconfig)
        assert weights(cluster, namespace, router) == (80, 20)  # untouched

    apply_chart("--set", EVERY_ROUTER)
    for router in ROUTER_KINDS:
        wait_until(lambda r=router: allowed(r), timeout=30, what=f"{router} granted")
        set_weight(router, kubeconfig)
        assert weights(cluster, namespace, router) == (60, 40)
