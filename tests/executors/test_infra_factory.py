"""The executor factory builds haproxy, command and kubernetes executors from a policy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from kube_support import roll_out
from rollguard.errors import ExecutorError
from rollguard.executors.command import CommandExecutor
from rollguard.executors.factory import make_executor
from rollguard.executors.haproxy import HaproxyExecutor
from rollguard.executors.kubernetes import KubernetesExecutor
from rollguard.policy.model import Policy
from servers.kube_cluster import KubeCluster


def _policy(executor: dict[str, Any]) -> Policy:
    return Policy.model_validate(
        {
            "target": {"deployment": "shop", "executor": executor},
            "metrics": {"provider": "prometheus", "address": "http://127.0.0.1:9090"},
            "error_rate_trigger": {"threshold": "5%"},
        }
    )


def test_haproxy_and_command_are_built() -> None:
    haproxy = make_executor(_policy({"type": "haproxy", "socket": "/run/h.sock", "backend": "app"}))
    command = make_executor(_policy({"type": "command", "rollback": ["true"]}))
    assert isinstance(haproxy, HaproxyExecutor)
    assert isinstance(command, CommandExecutor)
    assert asyncio.run(command.rollback()).ok


@pytest.mark.real_server
def test_kubernetes_reads_a_kubeconfig_and_context(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    roll_out(kube_cluster, kube_namespace, "shop:1.0")
    config = json.loads(kube_cluster.kubeconfig.read_text())
    real = config["contexts"][0]["context"]
    config["clusters"].append({"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9"}})
    config["contexts"] = [
        {"name": "other", "context": {**real, "cluster": "nowhere"}},
        {"name": "test", "context": real},
    ]
    config["current-context"] = "other"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    executor = make_executor(
        _policy(
            {
                "type": "kubernetes",
                "deployment": "shop",
                "namespace": kube_namespace,
                "kubeconfig": str(kubeconfig),
                "context": "test",
            }
        )
    )
    assert isinstance(executor, KubernetesExecutor)
    status = asyncio.run(executor.status())
    asyncio.run(executor.aclose())
    assert (status.canary_weight, status.canary_state) == (100, "serving")


def test_missing_kubeconfig_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(
        ExecutorError, match=r"cannot load Kubernetes credentials from the kubeconfig .*nope\.yaml"
    ):
        make_executor(
            _policy({"type": "kubernetes", "deployment": "shop", "kubeconfig": str(missing)})
        )


def test_in_cluster_outside_a_cluster_is_named() -> None:
    with pytest.raises(ExecutorError, match="in-cluster service account"):
        make_executor(_policy({"type": "kubernetes", "deployment": "shop", "in_cluster": True}))
