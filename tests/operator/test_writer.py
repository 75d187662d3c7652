"""The status writer on the real API server: reports leave the evaluation path, coalesced
(the newest of a burst is written, once), fenced (a replica that lost the shard drops its
pending write), and an analysis whose decision does not change does not write.

The writer and the controller run in this process so that the order of submissions and
writes is set up, not waited for: a submission never waits, and the writer's workers
only run when the test awaits. Oracles: the policy's status as the API server stores it
(``kubectl get``), its Events, and the requests the writer sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kube_support import NAME, roll_out
from operator_support import apply, events, policy_status, rollback_policy, scrape_policy, serving
from rollguard.audit.factory import open_store
from rollguard.operator.analysis import Settings
from rollguard.operator.controller import Controller
from rollguard.operator.kube import ControllerApi, Obj, PolicyKey, policy_reference
from rollguard.operator.status import condition
from rollguard.operator.writer import Event, StatusWriter
from servers.exporter import ExporterServer
from servers.kube_cluster import KubeCluster

DEADLINE = 120.0


@pytest.fixture
def exporters() -> Iterator[tuple[ExporterServer, ExporterServer]]:
    """Stable and canary both answering without errors: a healthy canary."""
    with serving(0.0) as stable, serving(0.0) as canary:
        yield stable, canary


def _policy(
    cluster: KubeCluster, namespace: str, exporters: tuple[ExporterServer, ExporterServer]
) -> None:
    stable, canary = exporters
    apply(cluster, rollback_policy("shop", namespace, scrape_policy(NAME, stable, canary)))


def _report(evaluations: int, action: str) -> Obj:
    return {
        "evaluations": evaluations,
        "decision": {"action": action, "reason": f"evaluation {evaluations}"},
    }


def test_a_burst_of_reports_is_written_once_with_the_newest(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
) -> None:
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    _policy(cluster, namespace, exporters)
    key = PolicyKey(namespace, "shop")
    counted: list[str] = []

    async def go(api: ControllerApi) -> None:
        (listed,) = await api.policies()
        sent = dict(api.requests)
        writer = StatusWriter(api, counted=counted.append)
        started = {
            "phase": "Watching",
            "controller": "replica",
            "conditions": [condition("Analysing", True, "Watching", "revision 2", 1)],
        }
        writer.submit(key, started, owns=lambda: True, seen=listed)
        for evaluations in (1, 2, 3):  # evaluated three times while the first write waits
            writer.submit(key, _report(evaluations, "continue"), owns=lambda: True)
        await writer.settle(key)
        await writer.aclose()
        # one PATCH, no read: the conditions merged into the listed policy's
        assert {verb: count - sent.get(verb, 0) for verb, count in api.requests.items()} == {
            "list": 0,
            "patch": 1,
        }

    with cluster.api_client() as client:
        asyncio.run(go(ControllerApi(client, namespace=namespace)))
    status = policy_status(cluster, namespace, "shop")
    assert status["phase"] == "Watching"
    assert status["evaluations"] == 3
    assert status["decision"]["reason"] == "evaluation 3"
    assert [found["type"] for found in status["conditions"]] == ["Analysing"]
    assert counted == ["coalesced"] * 3 + ["written"]


def test_a_replica_that_lost_the_shard_does_not_send_its_pending_write(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
) -> None:
    """Not while the shard is not owned; when the analysis reports again, owning it again
    (a late renewal, not a move), what was held back is merged under that report."""
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    _policy(cluster, namespace, exporters)
    key = PolicyKey(namespace, "shop")
    owned = [True]
    counted: list[str] = []
    seen: dict[str, Any] = {}

    async def go(api: ControllerApi) -> dict[str, int]:
        (listed,) = await api.policies()
        writer = StatusWriter(api, counted=counted.append)
        writer.submit(key, _report(1, "continue"), owns=lambda: owned[0])
        await writer.settle(key)  # written while owned
        started = Event(policy_reference(listed), "AnalysisStarted", "watching", warning=False)
        rolling = {**_report(2, "rollback"), "controller": "replica"}
        writer.submit(key, rolling, owns=lambda: owned[0], events=(started,))
        owned[0] = False  # the shard's Lease lapsed before the write was sent
        await writer.settle(key)
        seen["fenced"] = policy_status(cluster, namespace, "shop")
        seen["events"] = events(cluster, namespace, "RollbackPolicy", "shop")
        owned[0] = True
        writer.submit(key, _report(3, "continue"), owns=lambda: owned[0])
        await writer.settle(key)
        await writer.aclose()
        return dict(api.requests)

    with cluster.api_client() as client:
        sent = asyncio.run(go(ControllerApi(client, namespace=namespace)))
    fenced = seen["fenced"]
    assert (fenced["evaluations"], fenced["decision"]["action"]) == (1, "continue")
    assert "controller" not in fenced
    assert seen["events"] == []
    assert sent == {"list": 1, "patch": 2, "create": 1}
    status = policy_status(cluster, namespace, "shop")
    assert (status["evaluations"], status["decision"]["action"]) == (3, "continue")
    assert status["controller"] == "replica"
    assert events(cluster, namespace, "RollbackPolicy", "shop") == ["AnalysisStarted"]
    assert counted == ["written", "fenced", "coalesced", "written"]


def test_evaluations_that_decide_the_same_are_not_written(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
    tmp_path: Path,
) -> None:
    """A healthy canary evaluated every half second: the status is written when the
    analysis starts and when its decision changes, not at every evaluation."""
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    roll_out(cluster, namespace, "shop:v1", "shop:v2")
    _policy(cluster, namespace, exporters)
    key = PolicyKey(namespace, "shop")
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")

    async def go(client: Any) -> tuple[int, dict[str, int], set[str]]:
        api = ControllerApi(client, namespace=namespace)
        writes = ControllerApi(client, namespace=namespace)
        actions: set[str] = set()
        settings = Settings(
            api=api,
            client=client,
            audit=store,
            identity="replica",
            base_dir=tmp_path,
            watch_seconds=DEADLINE,
            status_every_seconds=3600.0,  # no refresh of an unchanged status in this test
            writer=StatusWriter(writes),
        )
        controller = Controller(settings)
        try:
            await controller.resync()
            analysis = controller.running[key].analysis
            async with asyncio.timeout(DEADLINE):
                while analysis.evaluations < 12:
                    actions.add(analysis.last_said[1] if analysis.last_said else "")
                    await asyncio.sleep(0.1)
            await settings.writes().settle(key)
            return analysis.evaluations, dict(writes.requests), actions
        finally:
            await controller.close()

    try:
        with cluster.api_client() as client:
            evaluated, sent, actions = asyncio.run(go(client))
    finally:
        store.close()
    assert evaluated >= 12
    assert actions <= {"", "continue"}  # a healthy canary: the same decision every time
    # the start (merged with the first report if it was still pending), the first decision
    assert 1 <= sent["patch"] <= 2
    assert sent.get("get", 0) <= 1
    status = policy_status(cluster, namespace, "shop")
    assert status["phase"] == "Watching"
    assert status["decision"]["action"] == "continue"
    assert 1 <= status["evaluations"] < evaluated
    assert events(cluster, namespace, "RollbackPolicy", "shop") == ["AnalysisStarted"]
    assert "AnalysisStarted" not in events(cluster, namespace, "Deployment", NAME)


class Recording(ControllerApi):
    """The real API, noting which policy each status write was for, in order."""

    def __init__(self, client: Any, *, namespace: str) -> None:
        super().__init__(client, namespace=namespace)
        self.written: list[str] = []

    async def patch_status(self, key: PolicyKey, status: Obj, *, seen: Obj | None = None) -> None:
        self.written.append(key.name)
        await super().patch_status(key, status, seen=seen)


def test_a_refresh_waits_behind_news(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
) -> None:
    """A report that only refreshes the count waits until no start or new decision does,
    and a policy reported again keeps its place."""
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    stable, canary = exporters
    for name in ("cart", "shop", "till"):
        apply(cluster, rollback_policy(name, namespace, scrape_policy(NAME, stable, canary)))
    cart, shop, till = (PolicyKey(namespace, name) for name in ("cart", "shop", "till"))

    async def go(api: Recording) -> None:
        writer = StatusWriter(api, concurrency=1)
        writer.submit(cart, _report(5, "continue"), owns=lambda: True, refresh=True)
        writer.submit(shop, _report(1, "continue"), owns=lambda: True)
        writer.submit(till, _report(1, "continue"), owns=lambda: True)
        writer.submit(shop, _report(2, "continue"), owns=lambda: True, refresh=True)
        await writer.aclose()

    with cluster.api_client() as client:
        api = Recording(client, namespace=namespace)
        asyncio.run(go(api))
    assert api.written == ["shop", "till", "cart"]
    assert policy_status(cluster, namespace, "shop")["evaluations"] == 2
    assert policy_status(cluster, namespace, "cart")["evaluations"] == 5
