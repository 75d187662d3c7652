"""The reconcile loop on the real control plane: once an analysis has rolled a revision
back, no resync starts an analysis of the revision its rollback restored (it would decide
again on the same canary: a second rollback), however the resync and the analysis's end
interleave.

The controller runs in this process so that each interleaving can be set up, not waited
for: its API is the real one, except that the policies can be listed as they were at the
first resync (a LIST answered before the verdict was written), or the verdict's write held
until a resync has run meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client as k8s

from kube_support import NAME, history, image, roll_out
from operator_support import apply, policy_status, rollback_policy, scrape_policy, serving
from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from rollguard.audit.sql import SqlAuditStore
from rollguard.controller.watch import Outcome, WatchResult
from rollguard.operator.analysis import Analysis, Settings
from rollguard.operator.controller import Controller
from rollguard.operator.kube import (
    ControllerApi,
    Obj,
    PolicyKey,
    deployment_reference,
    policy_reference,
)
from rollguard.operator.spec import parse
from rollguard.policy.actions import Action
from servers.exporter import ExporterServer
from servers.kube_cluster import KubeCluster

A = TypeVar("A", bound=ControllerApi)

#: A rollback waits for the restored ReplicaSet's simulated pods: minutes under load at worst.
DEADLINE = 120.0


class Api(ControllerApi):
    """The real API; while ``earlier``, the policy LIST answers with its first answer, and
    while ``hold`` is unset, the write of a RolledBack verdict waits for it."""

    def __init__(self, client: k8s.ApiClient, *, namespace: str) -> None:
        super().__init__(client, namespace=namespace)
        self.first: list[Obj] | None = None
        self.earlier = False
        self.writing = asyncio.Event()
        self.hold: asyncio.Event | None = None

    async def policies(self) -> list[Obj]:
        listed = await super().policies()
        if self.first is None:
            self.first = listed
        return self.first if self.earlier else listed

    async def patch_verdict(self, key: PolicyKey, status: Obj, *, revision: str) -> bool:
        if status.get("phase") == "RolledBack" and self.hold is not None:
            self.writing.set()
            await self.hold.wait()
        return await super().patch_verdict(key, status, revision=revision)


@pytest.fixture
def exporters() -> Iterator[tuple[ExporterServer, ExporterServer]]:
    """Stable answering no errors, the canary half of its requests with 500."""
    with serving(0.0) as stable, serving(0.5) as canary:
        yield stable, canary


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlAuditStore]:
    found = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    yield found
    found.close()


def _controller(
    cluster: KubeCluster,
    namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
    store: SqlAuditStore,
    tmp_path: Path,
    api_type: Callable[..., A],
) -> tuple[Controller, A]:
    """A bad canary of ``shop`` (v1 -> v2), its policy, and a controller for it whose API
    is an ``api_type``."""
    roll_out(cluster, namespace, "shop:v1", "shop:v2")
    stable, canary = exporters
    apply(cluster, rollback_policy("shop", namespace, scrape_policy(NAME, stable, canary)))
    client = cluster.api_client()
    api = api_type(client, namespace=namespace)
    settings = Settings(
        api=api,
        client=client,
        audit=store,
        identity="replica",
        base_dir=tmp_path,
        watch_seconds=DEADLINE,
    )
    return Controller(settings), api


def _rolled_back_once(cluster: KubeCluster, namespace: str, store: SqlAuditStore) -> None:
    status = policy_status(cluster, namespace, "shop")
    assert status["phase"] == "RolledBack"
    assert status["settledRevision"] == str(max(history(cluster, namespace)))
    assert image(cluster, namespace) == "shop:v1"
    results = [entry.record.outcome for entry in store.list(kind="action_result")]
    assert results == ["success"]
    assert store.verify().ok


def test_a_list_read_before_the_verdict_does_not_analyse_the_restored_revision(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
    store: SqlAuditStore,
    tmp_path: Path,
) -> None:
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    controller, api = _controller(cluster, namespace, exporters, store, tmp_path, Api)
    key = PolicyKey(namespace, "shop")

    async def go() -> list[PolicyKey]:
        try:
            await controller.resync()  # lists the policy before any verdict
            first = controller.running[key]
            await asyncio.wait_for(asyncio.shield(first.task), timeout=DEADLINE)
            api.earlier = True  # the analysis has ended: the next resync's LIST predates it
            await controller.resync()
            return list(controller.running)
        finally:
            await controller.close()

    with controller.settings.client:
        started = asyncio.run(go())
    assert started == []  # no analysis of the restored revision
    _rolled_back_once(cluster, namespace, store)


def test_a_resync_while_a_recovered_rollback_is_reported_does_not_interrupt_it(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
    store: SqlAuditStore,
    tmp_path: Path,
) -> None:
    """A replica killed after recording its rollback's intent; the replica that takes the
    policy finishes that rollback (recovery), and a resync lists the restored revision
    while the verdict is being written: the analysis is not interrupted, and the restored
    revision is not analysed."""
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    controller, api = _controller(cluster, namespace, exporters, store, tmp_path, Api)
    key = PolicyKey(namespace, "shop")
    killed: dict[str, Any] = {"deployment": NAME, "timestamp": "2026-12-07T09:00:00Z"}
    killed["watch_id"] = "killed"
    store.append(AuditRecord(kind="deployment_start", evidence={"namespace": namespace}, **killed))
    store.append(AuditRecord(kind="action_intent", action="immediate_rollback", **killed))

    async def go() -> tuple[bool, bool, list[PolicyKey]]:
        api.hold = asyncio.Event()
        try:
            await controller.resync()
            first = controller.running[key]
            await asyncio.wait_for(api.writing.wait(), timeout=DEADLINE)
            await controller.resync()  # the Deployment is at the restored revision now
            kept = controller.running.get(key) is first
            api.hold.set()
            await asyncio.wait({first.task}, timeout=DEADLINE)  # cancelled, or written
            await controller.resync()
            return kept, first.task.cancelled(), list(controller.running)
        finally:
            api.hold.set()
            await controller.close()

    with controller.settings.client:
        kept, cancelled, started = asyncio.run(go())
    assert kept
    assert not cancelled
    assert started == []
    _rolled_back_once(cluster, namespace, store)
    (recovered,) = store.list(kind="recovery")
    assert recovered.record.evidence["interrupted_watch"] == "killed"


class Racing(ControllerApi):
    """The real API; when ``newer`` is set, it is written as another replica's status right
    after the next read of the policy, before the reader's write (which then gets 409)."""

    def __init__(self, client: k8s.ApiClient, *, namespace: str) -> None:
        super().__init__(client, namespace=namespace)
        self.newer: Obj | None = None

    async def _status(self, key: PolicyKey) -> Obj:
        read = await super()._status(key)
        if self.newer is not None:
            await self._patch_status(key, {"status": self.newer})
            self.newer = None
        return read


def test_a_late_verdict_does_not_overwrite_the_new_owners(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    exporters: tuple[ExporterServer, ExporterServer],
    store: SqlAuditStore,
    tmp_path: Path,
) -> None:
    """A replica that carried out its rollback writes the verdict even if its shard moved
    meanwhile. Over the new owner's Watching it is written (that owner's analysis then
    stops at the restored revision); over the new owner's verdict, written even between
    the late writer's read and its write, it is not."""
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    controller, api = _controller(cluster, namespace, exporters, store, tmp_path, Racing)
    settings, client = controller.settings, controller.settings.client
    key = PolicyKey(namespace, "shop")
    result = WatchResult(
        outcome=Outcome.ROLLED_BACK,
        action=Action.IMMEDIATE_ROLLBACK,
        trigger="errors",
        reason="canary error rate above the stable's",
        severity="critical",
        evidence=[],
        started_at=0.0,
        decided_at=1.0,
        ended_at=2.0,
        evaluations=1,
        watch_id="late",
    )
    owner_watching = {"phase": "Watching", "revision": "3", "controller": "owner"}
    owner_verdict = {**owner_watching, "phase": "Idle", "settledRevision": "3"}

    async def go() -> tuple[Obj, Obj]:
        (obj,) = await api.policies()
        parsed = parse(obj)
        assert parsed.policy is not None
        target = (await api.deployments())[(namespace, NAME)]
        late = Analysis(
            key,
            parsed.generation,
            "2",
            parsed.policy,
            policy_reference(obj),
            deployment_reference(target),
        )
        await api.patch_status(key, owner_watching)
        await late.report(settings, result, "3")
        over_watching = await api._status(key)
        api.newer = owner_verdict
        await late.report(settings, result, "3")
        return over_watching["status"], (await api._status(key))["status"]

    with client:
        over_watching, over_verdict = asyncio.run(go())
    assert (over_watching["phase"], over_watching["revision"]) == ("RolledBack", "2")
    assert over_watching["settledRevision"] == "3"
    assert {name: over_verdict.get(name) for name in owner_verdict} == owner_verdict
