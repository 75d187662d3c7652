"""A ``rollguard watch`` promoting by replica counts on the real test cluster, SIGKILLed
between two steps, or half-way through a step's split, and started again: the release is
taken up at the step it recorded, no step lost or taken twice.

The watch is the real CLI, scraping two real exporters on the wall clock and
stepping two real Deployments (no router): the canary's share is its part of
8 pods. ``confirm_step`` lets a step move on only once the test has written
``go-<weight>``, so the test, not the machine's speed, says where the watch stands
when it is killed; a ResourceQuota holds a split half-done (the canary scaled, its
pods refused, stable not yet scaled). Oracles: the pods and annotations the API server holds, read
with ``kubectl``, and the audit trail.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kube_support import (
    SPLIT_PODS,
    SPLIT_STABLE,
    create,
    get,
    replicas,
    split_pair,
)
from operator_support import TrafficCollector
from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from rollguard.audit.sql import SqlAuditStore
from rollguard.controller.recovery import CLOSED_BY_RECOVERY
from servers.exporter import ExporterServer
from servers.kube_cluster import KubeCluster
from support import wait_until

pytestmark = pytest.mark.real_server

REPLICA_TOTAL = "rollguard.dev/replica-total"
DEADLINE = 120.0

POLICY = """\
target:
  deployment: shop
  executor:
    type: kubernetes
    deployment: shop
    stable_deployment: {stable}
    namespace: {namespace}
    kubeconfig: '{kubeconfig}'
    poll_interval: 0.2s
    rollout_timeout: 90s
metrics:
  provider: scrape
  stable: '{stable_url}'
  canary: '{canary_url}'
  scrape_interval: 0.25s
baseline: {{compare_with: stable}}
analysis: {{interval: 0.5s, min_requests: 20}}
audit: {{url: '{audit}'}}
error_rate_trigger: {{threshold: 5%, measurement_window: 5s, action: immediate_rollback}}
promotion:
  steps: [10, 25, 50, 100]
  min_step_duration: 1s
  hooks:
    confirm_step: {hook}
    confirm_promotion: {hook}
"""
#: A step moves on (from share W) only once the test has written ``go-W``.
HOOK = "{{on_failure: hold, command: [/bin/sh, -c, '{test}']}}"
GO = 'test -e "{gates}/go-$ROLLGUARD_CANARY_WEIGHT"'


@pytest.fixture
def exporters() -> Iterator[tuple[ExporterServer, ExporterServer]]:
    """Stable and canary each serving 2,000 requests a second at 1 % errors: healthy."""
    servers = []
    try:
        for _ in range(2):
            registry = CollectorRegistry()
            registry.register(TrafficCollector(2000.0, 0.01))  # type: ignore[arg-type]
            server = ExporterServer()
            server.set(registry=registry)
            server.start()
            servers.append(server)
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def two_deployments(kube_cluster: KubeCluster, kube_namespace: str) -> str:
    """Stable with all the pods; the canary Deployment created at none."""
    return split_pair(kube_cluster, kube_namespace)


class Watch:
    """One ``rollguard watch`` process of the policy, its JSON lines in a file."""

    def __init__(self, cmd: list[str], env: dict[str, str], policy: Path, name: str) -> None:
        self.output = policy.parent / f"{name}.jsonl"
        self.errors = policy.parent / f"{name}.err"
        with self.output.open("w") as out, self.errors.open("w") as err:
            self.process = subprocess.Popen(
                [*cmd, "watch", "-p", str(policy), "--for", "10m", "-o", "json"],
                stdout=out,
                stderr=err,
                env=env,
                cwd=policy.parent,
            )

    def running(self) -> None:
        """Fail at once, with its stderr, if the watch ended."""
        if self.process.poll() is not None:
            raise AssertionError(f"the watch ended ({self.process.returncode}): {self.stderr()}")

    def stderr(self) -> str:
        return self.errors.read_text()[-3000:]

    def result(self) -> dict[str, object]:
        """The final JSON object (the one with an outcome)."""
        lines = [json.loads(line) for line in self.output.read_text().splitlines() if line]
        found: dict[str, object] = next(line for line in reversed(lines) if "outcome" in line)
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


def _trail(store: SqlAuditStore) -> list[AuditRecord]:
    return [entry.record for entry in store.list(deployment="shop")]


def _steps(records: list[AuditRecord]) -> list[tuple[str, int, int]]:
    """Each ``promotion_step``: (watch, step, canary share asked)."""
    return [
        (r.watch_id, r.executor_output["step"], r.executor_output["canary_weight"])
        for r in records
        if r.kind == "promotion_step"
    ]


def split(canary: int) -> tuple[int, ...]:
    """(canary wanted, ready, stable wanted, ready) with ``canary`` of the pods on the canary."""
    return canary, canary, SPLIT_PODS - canary, SPLIT_PODS - canary


class Release:
    """The two Deployments, the policy over them, its audit trail, and the gates."""

    def __init__(
        self,
        cluster: KubeCluster,
        namespace: str,
        folder: Path,
        exporters: tuple[ExporterServer, ExporterServer],
    ) -> None:
        self.cluster, self.namespace, self.folder = cluster, namespace, folder
        db = f"sqlite:///{folder / 'audit.db'}"
        self.policy = folder / "shop.yaml"
        self.policy.write_text(
            POLICY.format(
                stable=SPLIT_STABLE,
                namespace=namespace,
                kubeconfig=cluster.kubeconfig,
                stable_url=exporters[0].url,
                canary_url=exporters[1].url,
                audit=db,
                hook=HOOK.format(test=GO.format(gates=folder)),
            )
        )
        self.store = open_store(db)

    def go(self, *weights: int) -> None:
        """Let the steps from these shares move on."""
        for weight in weights:
            (self.folder / f"go-{weight}").touch()

    def pods(self) -> tuple[int, ...]:
        """(canary wanted, ready, stable wanted, ready) as the API server has them."""
        return replicas(self.cluster, self.namespace, "shop", SPLIT_STABLE)

    def total_annotation(self) -> str | None:
        found = get(self.cluster, self.namespace, "deployment")["metadata"].get("annotations")
        return (found or {}).get(REPLICA_TOTAL)

    def trail(self) -> list[AuditRecord]:
        return _trail(self.store)


def _kill_when(watch: Watch, reached: Callable[[], bool], what: str) -> None:
    """SIGKILL the watch once ``reached``; it must not have ended before."""
    try:

        def there() -> bool:
            watch.running()
            return reached()

        wait_until(there, timeout=DEADLINE, what=what)
        watch.process.send_signal(signal.SIGKILL)
        assert watch.process.wait(timeout=30) == -signal.SIGKILL
    finally:
        watch.stop()


def _held_after_step(release: Release, step: int) -> bool:
    """Step ``step`` is the last recorded, and confirm_step has held the move past it since."""
    records = release.trail()
    moves = [i for i, r in enumerate(records) if r.kind == "promotion_step"]
    taken = _steps(records)
    if not taken or taken[-1][1] != step:
        return False
    return any(r.kind == "hook" and r.outcome == "failure" for r in records[moves[-1] :])


@pytest.fixture
def quota(kube_cluster: KubeCluster, two_deployments: str) -> Callable[[], None]:
    """At most one pod over the 8 in the namespace, in force (its usage counted): a split
    that grows the canary by two pods before stable shrinks is stopped half-way. Returns
    a function that lifts it."""
    namespace = two_deployments
    manifest = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "pods"},
        "spec": {"hard": {"pods": str(SPLIT_PODS + 1)}},
    }
    create(kube_cluster, namespace, manifest)

    def counted() -> bool:
        used = get(kube_cluster, namespace, "resourcequota", "pods").get("status") or {}
        return (used.get("used") or {}).get("pods") == str(SPLIT_PODS)

    wait_until(counted, timeout=60, what="the quota's usage counted")

    def lift() -> None:
        kube_cluster.kubectl("delete", "resourcequota", "pods", "-n", namespace)

    return lift


def test_a_watch_killed_between_steps_is_taken_up_at_its_step_by_replica_counts(
    tmp_path: Path,
    kube_cluster: KubeCluster,
    two_deployments: str,
    exporters: tuple[ExporterServer, ExporterServer],
    rollguard_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    release = Release(kube_cluster, two_deployments, tmp_path, exporters)
    release.go(10)  # the first watch may move from 10 % to 25 %, no further
    first = Watch(rollguard_cmd, cli_env, release.policy, "first")
    _kill_when(
        first,
        lambda: _held_after_step(release, 2) and release.pods() == split(2),
        "the first watch held at 25 %",
    )
    assert release.pods() == split(2)  # the split it recorded, left as it stood
    _resumed_and_promoted(release, rollguard_cmd, cli_env)


def test_a_watch_killed_half_way_through_a_split_is_taken_up_at_its_recorded_step(
    tmp_path: Path,
    kube_cluster: KubeCluster,
    two_deployments: str,
    quota: Callable[[], None],
    exporters: tuple[ExporterServer, ExporterServer],
    rollguard_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    release = Release(kube_cluster, two_deployments, tmp_path, exporters)
    release.go(10, 25)  # on to 50 %, whose split the quota stops half-way

    def half_way() -> bool:
        wanted = get(kube_cluster, two_deployments, "deployment")["spec"]["replicas"]
        return wanted == 4 and len(_steps(release.trail())) == 2

    first = Watch(rollguard_cmd, cli_env, release.policy, "first")
    _kill_when(first, half_way, "the canary scaled to 4 pods, the quota refusing one")
    canary_wanted, canary_ready, *stable = release.pods()
    assert (canary_wanted, stable) == (4, [6, 6])  # half-done: stable not yet shrunk
    assert canary_ready < 4  # the quota refused a pod
    quota()
    _resumed_and_promoted(release, rollguard_cmd, cli_env)


def _resumed_and_promoted(release: Release, rollguard_cmd: list[str], env: dict[str, str]) -> None:
    """The killed watch left step 2 (25 %) as its last; the next watch takes the release up
    there (the pods set to that step's again), then promotes it step by step."""
    killed = release.trail()
    (killed_watch,) = {r.watch_id for r in killed}
    assert [r.kind for r in killed].count("deployment_end") == 0  # killed: no end recorded
    assert _steps(killed) == [(killed_watch, 1, 10), (killed_watch, 2, 25)]
    assert release.total_annotation() == str(SPLIT_PODS)

    release.go(25)
    second = Watch(rollguard_cmd, env, release.policy, "second")
    try:
        wait_until(
            lambda: second.running() or _held_after_step(release, 3),
            timeout=DEADLINE,
            what="the next watch on to 50 %",
        )
        records = release.trail()
        second_watch = [r.watch_id for r in records if r.kind == "deployment_start"][-1]
        assert _steps(records)[2] == (second_watch, 2, 25)  # taken up at 25 %, not 10 %
        assert release.pods() == split(4)
        release.go(50)  # now it may promote
        assert second.process.wait(timeout=DEADLINE) == 0, second.stderr()
    finally:
        second.stop()
    result = second.result()
    assert (result["outcome"], result["watch_id"]) == ("promoted", second_watch)
    assert release.pods() == split(SPLIT_PODS)
    assert release.total_annotation() is None  # the release ended: the next counts anew
    _trail_checked(release, killed_watch, second_watch)


def _trail_checked(release: Release, killed_watch: str, resumed_watch: str) -> None:
    """Every step once, the resumed one said so; hooks; both watches' ends; the chain."""
    records = release.trail()
    assert _steps(records) == [
        (killed_watch, 1, 10),
        (killed_watch, 2, 25),
        (resumed_watch, 2, 25),  # its first step: where the killed watch stood
        (resumed_watch, 3, 50),
        (resumed_watch, 4, 100),
    ]
    moves = [r for r in records if r.kind == "promotion_step"]
    assert moves[2].reason == f"25%: resumed at step 2 after watch {killed_watch} was interrupted"
    assert all(move.outcome == "success" for move in moves)
    achieved = [
        (m.executor_output["achieved_weight"], m.executor_output["replicas"]) for m in moves
    ]
    assert achieved == [
        (12.5, {"canary": 1, "stable": 7, "total": 8}),
        (25.0, {"canary": 2, "stable": 6, "total": 8}),
        (25.0, {"canary": 2, "stable": 6, "total": 8}),
        (50.0, {"canary": 4, "stable": 4, "total": 8}),
        (100.0, {"canary": 8, "stable": 0, "total": 8}),
    ]
    passed = [
        r.executor_output["hook"]
        for r in records
        if r.kind == "hook" and r.outcome == "success" and r.watch_id == resumed_watch
    ]
    assert passed == ["confirm_step", "confirm_promotion"]  # 25 -> 50, 50 -> 100
    ends = [(r.watch_id, r.outcome, r.reason) for r in records if r.kind == "deployment_end"]
    assert ends == [
        (killed_watch, "interrupted", CLOSED_BY_RECOVERY),
        (resumed_watch, "promoted", ends[-1][2]),
    ]
    assert release.store.verify().ok
    release.store.close()
