"""Sharded replicas on the real control plane: every policy evaluated by exactly one
replica, a killed replica's policies taken over, a paused replica fenced off.

The replicas are real ``rollguard controller`` processes sharing one real
PostgreSQL audit store; ownership is read back from the cluster (each policy's
``status.controller``, written when a replica starts its analysis).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kube_support import ConcurrentWriter, deployment, image, roll_out
from operator_support import (
    ControllerProcess,
    policy_status,
    rollback_policy,
    scrape_policy,
    serving,
)
from rollguard.audit.base import LockInfo
from rollguard.audit.factory import open_store
from rollguard.audit.locks import lock_key
from rollguard.audit.schema import locks
from rollguard.errors import ExecutorError
from rollguard.executors.kubernetes import KubernetesExecutor
from rollguard.operator.fence import FencedExecutor
from rollguard.operator.kube import PolicyKey
from rollguard.operator.shards import LeaseTiming, ShardKeeper, shard_of
from rollguard.policy.model import KubernetesExecutorSpec
from servers.exporter import ExporterServer
from servers.kube_cluster import KubeCluster
from servers.postgres import PostgresServer
from support import wait_until

POLICIES = 8
LEASE = "10"  # seconds, the default: a loaded machine may starve a replica for seconds
RENEW_DEADLINE = 7.0  # seconds, the default: how long a holder acts after a renewal
DEADLINE = 90.0


@pytest.fixture
def healthy() -> Iterator[tuple[ExporterServer, ExporterServer]]:
    with serving(0.0) as stable, serving(0.0) as canary:
        yield stable, canary


@pytest.fixture
def audit_url(postgres_server: PostgresServer, kube_namespace: str) -> str:
    return postgres_server.create_schema(f"audit_{kube_namespace.replace('-', '_')}")


def _replicas(
    cluster: KubeCluster, directory: Path, namespace: str, audit: str, count: int
) -> list[ControllerProcess]:
    return [
        ControllerProcess(
            cluster,
            directory,
            namespace=namespace,
            identity=f"replica-{index}",
            audit=audit,
            extra=("--lease-seconds", LEASE, "--shards", "6"),
        )
        for index in range(count)
    ]


def _owners(cluster: KubeCluster, namespace: str, names: list[str]) -> dict[str, str] | None:
    """Each policy's replica, once every policy is watched and evaluated."""
    owners = {}
    for name in names:
        status = policy_status(cluster, namespace, name)
        if status.get("phase") != "Watching" or not status.get("evaluations"):
            return None
        owners[name] = status["controller"]
    return owners


@pytest.mark.timeout(360)  # the cluster may start first, then three replicas and a kill
def test_a_killed_replicas_policies_are_evaluated_again_by_the_others(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    healthy: tuple[ExporterServer, ExporterServer],
    audit_url: str,
    tmp_path: Path,
) -> None:
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    stable, canary = healthy
    names = [f"svc-{index}" for index in range(POLICIES)]
    items = []
    for name in names:
        items.append({**deployment("svc:v1", name=name, replicas=1)})
        items.append(rollback_policy(name, namespace, scrape_policy(name, stable, canary)))
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )  # fmt: skip
    replicas = _replicas(cluster, tmp_path, namespace, audit_url, 3)
    try:
        pids = {replica.identity: replica.process.pid for replica in replicas}

        def spread() -> dict[str, str] | None:
            # every policy watched, the shards spread (more than one replica evaluates), and
            # settled: each deployment's lock is held by the replica its status names
            owners = _owners(cluster, namespace, names)
            if not owners or len(set(owners.values())) < 2:
                return None
            held = _locks(audit_url, {lock_key(name, namespace) for name in names})
            for name, owner in owners.items():
                lock = held.get(lock_key(name, namespace))
                if lock is None or lock.pid != pids[owner]:
                    return None
            return owners

        before = wait_until(spread, timeout=DEADLINE, what="every policy watched, spread")
        for replica in replicas:
            replica.check()
        victim = max(replicas, key=lambda r: list(before.values()).count(r.identity))
        orphaned = [name for name, owner in before.items() if owner == victim.identity]
        keys = {lock_key(name, namespace) for name in orphaned}
        # As if the victim ran on another host: no survivor can see that its pid is gone.
        assert _move_locks(audit_url, victim.process.pid, host="another-host") == keys
        killed = time.time()
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        left = _locks(audit_url, keys)
        # Its locks follow its shard Leases: they run out when its ownership did, within the
        # renew deadline of its death, before the survivors may take its shards.
        assert {key: lock.host for key, lock in left.items()} == dict.fromkeys(keys, "another-host")
        assert max(lock.expires_at for lock in left.values()) <= killed + RENEW_DEADLINE

        def taken_over() -> dict[str, str] | None:
            owners = _owners(cluster, namespace, orphaned)
            if owners and victim.identity not in owners.values():
                return owners
            return None

        after = wait_until(taken_over, timeout=DEADLINE, what="the killed replica's policies")
        assert set(after.values()) <= {r.identity for r in replicas if r is not victim}
        taken = _locks(audit_url, keys)
        assert set(taken) == keys
        for key, lock in taken.items():  # the second fence held until its lease ran out
            assert lock.host != "another-host"
            assert lock.acquired_at >= left[key].expires_at
    finally:
        for replica in replicas:
            replica.stop()
    store = open_store(audit_url, create=False)
    try:
        assert store.verify().ok
        acted = [e for e in store.list(details=False) if e.record.kind == "action_intent"]
    finally:
        store.close()
    assert acted == []  # healthy canaries: nothing was rolled back, by anyone


@pytest.mark.timeout(240)
def test_a_revision_evaluated_before_is_evaluated_at_once_by_its_new_owner(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    healthy: tuple[ExporterServer, ExporterServer],
    tmp_path: Path,
) -> None:
    """A replica taking over a shard finds its policies' revisions under analysis, evaluated
    by the replica that held it: past their warm-up, they are evaluated at once, not an
    hour of warm-up later. A revision never evaluated waits for its warm-up."""
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    stable, canary = healthy
    items = []
    for name in ("taken", "fresh"):
        spec = scrape_policy(name, stable, canary)
        spec["analysis"]["warmup"] = "1h"
        items += [
            deployment("svc:v1", name=name, replicas=1),
            rollback_policy(name, namespace, spec),
        ]
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )  # fmt: skip
    revision = wait_until(
        lambda: _revision(cluster, namespace, "taken"), timeout=DEADLINE, what="a revision"
    )
    # What a killed replica left on the policy: this revision watched and evaluated.
    before = {"phase": "Watching", "revision": revision, "observedGeneration": 1}
    cluster.kubectl(
        "patch", "rollbackpolicy", "taken", "-n", namespace, "--subresource=status",
        "--type=merge", "-p",
        json.dumps({"status": {**before, "evaluations": 3, "controller": "a-killed-replica"}}),
    )  # fmt: skip
    replica = ControllerProcess(
        cluster,
        tmp_path,
        namespace=namespace,
        identity="new-owner",
        audit=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    try:

        def evaluated_by_new_owner() -> dict[str, Any] | None:
            replica.check()
            status = policy_status(cluster, namespace, "taken")
            ours = status.get("controller") == "new-owner" and status.get("evaluations", 0) >= 1
            return status if ours else None

        taken = wait_until(evaluated_by_new_owner, timeout=DEADLINE, what="taken evaluated")
        fresh = wait_until(
            lambda: _watched_by(cluster, namespace, "fresh", "new-owner"),
            timeout=DEADLINE,
            what="fresh watched",
        )
        replica.check()
    finally:
        replica.stop()
    assert taken["phase"] == "Watching"
    assert taken["revision"] == revision
    assert fresh["evaluations"] == 0  # its hour of warm-up has barely begun


def _revision(cluster: KubeCluster, namespace: str, name: str) -> str | None:
    found = json.loads(
        cluster.kubectl("get", "deployment", name, "-n", namespace, "-o", "json").stdout
    )
    annotations = found["metadata"].get("annotations") or {}
    return annotations.get("deployment.kubernetes.io/revision")


def _watched_by(
    cluster: KubeCluster, namespace: str, name: str, replica: str
) -> dict[str, Any] | None:
    status = policy_status(cluster, namespace, name)
    watched = status.get("phase") == "Watching" and status.get("controller") == replica
    return status if watched else None


def _move_locks(audit_url: str, pid: int, *, host: str) -> set[str]:
    """Record the locks held by process ``pid`` as held on ``host``; their keys."""
    engine = sa.create_engine(audit_url)
    try:
        with engine.begin() as connection:
            rows = connection.execute(
                sa.update(locks)
                .where(locks.c.pid == pid)
                .values(host=host)
                .returning(locks.c.deployment)
            ).all()
    finally:
        engine.dispose()
    return {row[0] for row in rows}


def _locks(audit_url: str, keys: set[str]) -> dict[str, LockInfo]:
    store = open_store(audit_url, create=False)
    try:
        found = {key: store.lock_holder(key) for key in keys}
    finally:
        store.close()
    return {key: lock for key, lock in found.items() if lock is not None}


def test_a_replica_whose_lease_lapsed_is_refused_its_pending_rollback(
    rollbackpolicy_crd: KubeCluster, kube_namespace: str, kube_admin: object
) -> None:
    """A replica paused past its Lease: when it wakes with a rollback pending, the fence
    (checked right before acting) refuses it, and the Deployment is untouched. Nor does it
    read the Deployment back: a replica cut off from the API server would wait there,
    keeping the deployment's audit lock from the new owner."""
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    roll_out(cluster, namespace, "shop:v1", "shop:v2")
    now = [1000.0]
    client = ConcurrentWriter(cluster.kubeconfig)
    keeper = ShardKeeper(
        client,
        namespace=namespace,
        identity="paused",
        shards=1,
        timing=LeaseTiming(lease_seconds=5.0, renew_deadline_seconds=3.5, retry_seconds=1.0),
        clock=lambda: now[0],
    )
    key = PolicyKey(namespace, "shop")
    spec = KubernetesExecutorSpec(deployment="shop", namespace=namespace, poll_interval=0.2)
    fenced = FencedExecutor(
        KubernetesExecutor(spec, api_client=client),
        lambda: keeper.owns(key),
        what=f"policy {key}",
    )

    async def go() -> tuple[bool, bool, str, str]:
        await keeper.tick()
        held = keeper.owns(key)
        now[0] += 6.0  # SIGSTOP for longer than the Lease: the clock ran on meanwhile
        result = await fenced.rollback()
        with pytest.raises(ExecutorError) as read:
            await fenced.status()
        return held, result.ok, result.detail, str(read.value)

    with client:
        held, ok, detail, read = asyncio.run(go())
        paths = [path for _, path, _ in client.responses]
    assert shard_of(key, 1) == 0
    assert held
    assert not ok
    assert "no longer owns" in detail
    assert "no longer owns" in read
    assert not [path for path in paths if "/deployments" in path or "/replicasets" in path]
    assert image(cluster, namespace) == "shop:v2"
