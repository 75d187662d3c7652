"""Building a KubernetesExecutor against the in-process API server, for several test files."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client as k8s

from rollguard.executors.kubernetes import KubernetesExecutor
from rollguard.policy.model import KubernetesExecutorSpec
from servers.kube_api import FakeCluster


def make_executor(cluster: FakeCluster, **spec: Any) -> KubernetesExecutor:
    """An executor for deployment ``shop`` whose rollout waits advance per read, not per second."""
    configuration = k8s.Configuration()
    configuration.host = cluster.url

    async def sleep(seconds: float) -> None:
        return None

    ticks = iter(range(1_000_000))
    return KubernetesExecutor(
        KubernetesExecutorSpec.model_validate({"deployment": "shop", "poll_interval": 1, **spec}),
        api_client=k8s.ApiClient(configuration),
        sleep=sleep,
        clock=lambda: float(next(ticks)),
    )


def run(executor: KubernetesExecutor, call: str, **kwargs: Any) -> Any:
    """Call one executor method to completion, then close the executor."""

    async def go() -> Any:
        try:
            return await getattr(executor, call)(**kwargs)
        finally:
            await executor.aclose()

    return asyncio.run(go())


def image(cluster: FakeCluster, name: str = "shop") -> str:
    """The image the Deployment's template runs now."""
    template = cluster.get("deployments", name)["spec"]["template"]
    return str(template["spec"]["containers"][0]["image"])
