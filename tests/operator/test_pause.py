"""A real replica paused (SIGSTOP) past its Lease, with a rollback decided and pending,
is refused that rollback when it wakes (SIGCONT); the replica that took its shard rolls
the Deployment back, once.

To hold the rollback pending at the moment of the pause, the test takes the audit
store's append lock: the replica decides, blocks recording its decision before it
acts (observed in ``pg_locks``), and is stopped there. When it wakes, its API server is
cut off (a TCP gate), so neither its Lease renewal nor its resync can tell it the
shard is gone: only the fence, on its own clock, stands between it and the
rollback. It stays cut off until the new owner has rolled back: the refused
replica must end its watch (and give the deployment's lock back) without the API
server. Oracles: the audit trail, the Deployment's ReplicaSets, the Leases.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily

from kube_support import NAME, history, image, roll_out
from operator_support import ControllerProcess, apply, policy_status, rollback_policy, scrape_policy
from rollguard.audit.factory import open_store
from rollguard.audit.sql import _APPEND_LOCK_KEY
from servers.exporter import ExporterServer
from servers.kube_cluster import KubeCluster
from servers.postgres import PostgresServer
from servers.tcp_gate import TcpGate
from support import wait_until

#: Lease, renew deadline and retry period (seconds): as short as the test machine allows
#: the replicas to renew.
TIMING = ("--lease-seconds", "3", "--renew-deadline-seconds", "2", "--retry-seconds", "1")
DEADLINE = 120.0


class Traffic:
    """Counters of a serving version whose error share can change while it serves."""

    def __init__(self, rate: float, error_share: float) -> None:
        self.rate, self.error_share = rate, error_share
        self._ok = self._errors = 0.0
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def collect(self) -> Iterator[CounterMetricFamily]:
        with self._lock:
            now = time.monotonic()
            served = self.rate * (now - self._at)
            self._at = now
            self._ok += served * (1 - self.error_share)
            self._errors += served * self.error_share
            family = CounterMetricFamily("http_requests", "Requests served.", labels=["code"])
            family.add_metric(["200"], self._ok)
            family.add_metric(["500"], self._errors)
        yield family


@pytest.fixture
def versions() -> Iterator[tuple[ExporterServer, ExporterServer, Traffic]]:
    servers, canary = [], Traffic(50.0, 0.0)
    for traffic in (Traffic(50.0, 0.0), canary):
        registry = CollectorRegistry()
        registry.register(traffic)  # type: ignore[arg-type]
        server = ExporterServer()
        server.set(registry=registry)
        server.start()
        servers.append(server)
    try:
        yield servers[0], servers[1], canary
    finally:
        for server in servers:
            server.stop()


def _waiting_appends(postgres: PostgresServer) -> int:
    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="postgres") as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND objid::bigint = %s",
            (_APPEND_LOCK_KEY,),
        ).fetchone()
    return int(row[0]) if row else 0


def _holder(cluster: KubeCluster, namespace: str) -> str:
    lease = json.loads(
        cluster.kubectl("get", "lease", "rollguard-shard-0", "-n", namespace, "-o", "json").stdout
    )
    return str(lease["spec"].get("holderIdentity") or "")


def _pause_with_a_decision_pending(
    cluster: KubeCluster,
    namespace: str,
    paused: ControllerProcess,
    held: psycopg.Connection[Any],
    canary_traffic: Traffic,
    link: TcpGate,
    postgres_server: PostgresServer,
) -> None:
    """The canary goes bad while appends wait: the replica decides and blocks writing its
    decision; it is stopped there, cut off, and kept stopped until its shard is taken."""
    held.execute("SELECT pg_advisory_lock(%s)", (_APPEND_LOCK_KEY,))
    canary_traffic.error_share = 0.5
    wait_until(
        lambda: _waiting_appends(postgres_server) >= 1,
        timeout=DEADLINE,
        what="the replica's decision waiting to be written",
    )
    link.shut()
    paused.process.send_signal(signal.SIGSTOP)
    wait_until(
        lambda: _holder(cluster, namespace) == "taker",
        timeout=DEADLINE,
        what="the other replica taking the paused one's shard",
    )
    held.execute("SELECT pg_advisory_unlock(%s)", (_APPEND_LOCK_KEY,))


def _refusal(audit_url: str) -> dict[str, Any] | None:
    """The step of a rollback the fence refused, once it is in the trail."""
    store = open_store(audit_url, create=False)
    try:
        for entry in store.list(kind="action_step"):
            if entry.record.executor_output.get("fenced"):
                return dict(entry.record.executor_output)
    finally:
        store.close()
    return None


def _action_results(audit_url: str) -> tuple[list[Any], str]:
    """Every action_result in the trail, once the chain is verified, and the whole trail
    in one line an entry (what a failed assertion shows)."""
    store = open_store(audit_url, create=False)
    try:
        assert store.verify().ok
        entries = store.list()
    finally:
        store.close()
    lines = []
    for entry in entries:
        record = entry.record
        output = record.executor_output
        said = output.get("detail") or output.get("found") or output.get("step") or ""
        lines.append(
            f"{entry.id} {record.timestamp} {record.watch_id[:8]} {record.kind} "
            f"{record.action} {record.outcome} {str(said)[:120]}"
        )
    results = [entry.record for entry in entries if entry.record.kind == "action_result"]
    return results, "\n".join(lines)


def _fenced(record: Any) -> bool:
    """Whether the fence refused a step of the action this result records."""
    steps: Any = record.executor_output.get("steps") or []
    return any(step.get("fenced") for step in steps)


@pytest.mark.timeout(300)
def test_a_paused_replicas_pending_rollback_is_refused_when_it_wakes(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    versions: tuple[ExporterServer, ExporterServer, Traffic],
    cut_off: tuple[TcpGate, Path],
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    stable, canary, canary_traffic = versions
    link, gated = cut_off
    audit_url = postgres_server.create_schema(f"pause_{namespace.replace('-', '_')}")
    roll_out(cluster, namespace, "shop:v1", "shop:v2")
    apply(cluster, rollback_policy("shop", namespace, scrape_policy(NAME, stable, canary)))
    common = (*TIMING, "--shards", "1")
    paused = ControllerProcess(
        SimpleNamespace(kubeconfig=gated),  # type: ignore[arg-type]
        tmp_path,
        namespace=namespace,
        identity="paused",
        audit=audit_url,
        extra=common,
    )
    taker: ControllerProcess | None = None
    held = psycopg.connect(
        host="127.0.0.1", port=postgres_server.port, user="postgres", autocommit=True
    )
    try:

        def watching() -> dict[str, Any] | None:
            paused.check()
            status = policy_status(cluster, namespace, "shop")
            ok = status.get("controller") == "paused" and status.get("evaluations")
            return status if ok and status.get("phase") == "Watching" else None

        wait_until(watching, timeout=DEADLINE, what="the first replica watching the canary")
        taker = ControllerProcess(
            cluster, tmp_path, namespace=namespace, identity="taker", audit=audit_url, extra=common
        )
        _pause_with_a_decision_pending(
            cluster, namespace, paused, held, canary_traffic, link, postgres_server
        )
        paused.process.send_signal(signal.SIGCONT)

        fenced = wait_until(
            lambda: _refusal(audit_url), timeout=DEADLINE, what="the woken replica's refusal"
        )
        assert fenced["step"] == "rollback"
        assert "no longer owns" in fenced["detail"]
        assert image(cluster, namespace) == "shop:v2"  # the paused replica changed nothing
        base = paused.health_url()
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert re.search(r"^rollguard_controller_fenced_refusals_total 1\.0$", metrics, re.M)

        # Still cut off: the refused replica reads nothing back, so its watch has ended
        # and the new owner takes the deployment's lock without waiting for the link.
        def rolled_back() -> dict[str, Any] | None:
            assert taker is not None
            taker.check()
            status = policy_status(cluster, namespace, "shop")
            return status if status.get("phase") == "RolledBack" else None

        status = wait_until(rolled_back, timeout=DEADLINE, what="the new owner's rollback")
        assert status["controller"] == "taker"
        assert image(cluster, namespace) == "shop:v1"
    finally:
        held.close()
        link.open()
        paused.process.send_signal(signal.SIGCONT)
        paused.stop()
        if taker is not None:
            taker.stop()
    results, trail = _action_results(audit_url)
    outcomes = [(record.outcome, _fenced(record)) for record in results]
    logs = f"controller logs: {paused.log}, {tmp_path / 'taker.log'}"
    # the paused replica's rollback, recorded refused; then the one rollback, by the owner
    assert outcomes == [("failure", True), ("success", False)], f"{trail}\n{logs}"
    revisions = history(cluster, namespace)
    assert max(revisions) == 3  # v1, v2, and the one rollback back to v1's template
