"""``rollguard controller``'s /healthz, /readyz and /metrics, asked of real processes.

Liveness judges the reconcile loop by the marks it leaves; readiness names what
is away (the API server, the shard Leases, the audit store); the metrics count
what the replica did. The oracles are the HTTP answers of a real controller
process, and the cluster's own word for what it evaluated.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest

from kube_support import deployment
from operator_support import (
    ControllerProcess,
    policy_status,
    rollback_policy,
    scrape_policy,
    serving,
)
from rollguard.errors import UsageError
from rollguard.operator.probes import Marks, parse_address
from servers.exporter import ExporterServer
from servers.kube_cluster import KubeCluster
from servers.postgres import PostgresServer
from servers.tcp_gate import TcpGate
from support import free_port, wait_until

#: Lease, renew deadline and retry period (seconds): a cut-off replica's calls time out soon.
TIMING = ("--lease-seconds", "3", "--renew-deadline-seconds", "2", "--retry-seconds", "1")


def _get(base: str, path: str) -> tuple[int, str]:
    answer = httpx.get(f"{base}{path}", timeout=10)
    return answer.status_code, answer.text


def _sample(metrics: str, name: str) -> float | None:
    """One sample's value from the text format (``name`` with its labels, if any)."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_liveness_fails_when_the_loop_stops_coming_round() -> None:
    now = [100.0]
    marks = Marks(stall_seconds=60, lease_seconds=10, clock=lambda: now[0])
    assert marks.liveness()[0]  # just started: the loop has its stall time to come round
    now[0] += 61
    alive, body = marks.liveness()
    assert not alive
    assert "61s" in body["reason"]
    marks.resynced("the API server is away")  # a failed resync is still the loop coming round
    assert marks.liveness()[0]
    parts = marks.readiness()
    assert parts["api"] == {"ok": False, "problem": "the API server is away"}
    marks.resynced()
    marks.ticked()
    assert marks.readiness() == {"api": {"ok": True}, "leases": {"ok": True}}
    now[0] += 11  # a Lease duration without a renewal: no longer sure of the shards
    assert not marks.readiness()["leases"]["ok"]


@pytest.mark.parametrize("text", ["8080", "localhost", "host:port", ":8080", "1.2.3.4:70000"])
def test_a_bad_health_address_is_bad_input(text: str) -> None:
    with pytest.raises(UsageError, match="HOST:PORT"):
        parse_address(text)


def test_health_addresses_parse() -> None:
    assert parse_address("0.0.0.0:8080") == ("0.0.0.0", 8080)  # noqa: S104 (parsed, not bound)
    assert parse_address("[::]:9090") == ("::", 9090)


@pytest.fixture
def audit_url(postgres_server: PostgresServer, tmp_path: Path) -> str:
    return postgres_server.create_schema(f"probes_{tmp_path.name.replace('-', '_')[-40:]}")


def test_readiness_names_an_api_server_and_an_audit_store_that_are_away(
    postgres_server: PostgresServer, audit_url: str, tmp_path: Path
) -> None:
    """A controller whose API server does not answer is alive (restarting would not help)
    but not ready; an audit store that stops answering makes it not ready too."""
    dead = tmp_path / "kubeconfig"
    dead.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}
                ],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    cluster: Any = SimpleNamespace(kubeconfig=dead)  # a cluster nobody answers for
    process = ControllerProcess(
        cluster, tmp_path, namespace="default", identity="lonely", audit=audit_url
    )
    try:
        base = process.health_url()

        def failed_resyncs() -> str | None:
            metrics = _get(base, "/metrics")[1]
            errors = _sample(metrics, 'rollguard_controller_resyncs_total{result="error"}')
            return metrics if errors and errors >= 2 else None

        metrics = wait_until(failed_resyncs, timeout=60, what="failed resyncs counted")
        assert _sample(metrics, "rollguard_controller_shards_held") == 0
        status, body = _get(base, "/healthz")
        assert status == 200, body
        status, body = _get(base, "/readyz")
        assert status == 503, body
        ready = json.loads(body)
        assert ready["ready"] is False
        assert ready["api"]["ok"] is False
        assert "Kubernetes API" in ready["api"]["problem"]
        assert ready["leases"]["ok"] is False
        assert ready["audit"] == {"ok": True}

        schema = re.search(r"search_path%3D(\w+)", audit_url)
        assert schema is not None
        with psycopg.connect(
            host="127.0.0.1", port=postgres_server.port, user="postgres", autocommit=True
        ) as connection:
            connection.execute(f'DROP SCHEMA "{schema.group(1)}" CASCADE')

        def audit_away() -> dict[str, Any] | None:
            found: dict[str, Any] = json.loads(_get(base, "/readyz")[1])
            return found if not found["audit"]["ok"] else None

        away = wait_until(audit_away, timeout=30, what="/readyz to see the audit store gone")
        assert "audit store" in away["audit"]["problem"]
        assert _get(base, "/nowhere")[0] == 404
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(timeout=30) == 0
    finally:
        process.stop()


@pytest.fixture
def healthy() -> Iterator[tuple[ExporterServer, ExporterServer]]:
    with serving(0.0) as stable, serving(0.0) as canary:
        yield stable, canary


def test_a_working_controller_is_ready_and_counts_its_evaluations(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    healthy: tuple[ExporterServer, ExporterServer],
    tmp_path: Path,
) -> None:
    cluster, namespace = rollbackpolicy_crd, kube_namespace
    stable, canary = healthy
    items = [
        deployment("svc:v1", name="svc", replicas=1),
        rollback_policy("svc", namespace, scrape_policy("svc", stable, canary)),
    ]
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )  # fmt: skip
    process = ControllerProcess(
        cluster,
        tmp_path,
        namespace=namespace,
        identity="probed",
        audit=f"sqlite:///{tmp_path / 'audit.db'}",
        extra=("--shards", "3"),
    )
    try:
        base = process.health_url()

        def evaluated() -> str | None:
            process.check()
            metrics = _get(base, "/metrics")[1]
            count = _sample(metrics, "rollguard_controller_evaluations_total")
            return metrics if count and count >= 2 else None

        metrics = wait_until(evaluated, timeout=120, what="evaluations counted on /metrics")
        status = policy_status(cluster, namespace, "svc")
        assert status["controller"] == "probed"
        assert status["evaluations"] >= 1  # the cluster's word: this replica evaluated it
        assert _sample(metrics, "rollguard_controller_shards_held") == 3  # alone: every shard
        assert _sample(metrics, "rollguard_controller_analyses_running") == 1
        listed = _sample(metrics, 'rollguard_controller_api_requests_total{verb="list"}')
        assert (listed or 0) >= 2
        assert _sample(metrics, "rollguard_controller_fenced_refusals_total") == 0
        # every evaluation's lag is observed; a scrape policy's, from its own start
        lagged = _sample(metrics, "rollguard_controller_evaluation_lag_seconds_count")
        assert lagged is not None
        assert lagged >= 2
        within = 'rollguard_controller_evaluation_lag_seconds_bucket{le="60.0"}'
        assert _sample(metrics, within) == lagged
        # a scrape policy asks no Prometheus; the batcher's counts are there, at zero
        batched = 'rollguard_controller_prometheus_queries_total{mode="batched"}'
        assert _sample(metrics, batched) == 0
        code, body = _get(base, "/readyz")
        assert code == 200, body
        ready = json.loads(body)
        assert ready["shards_held"] == [0, 1, 2]
        assert _get(base, "/healthz")[0] == 200
    finally:
        process.stop()


def test_a_replica_cut_off_from_the_api_server_times_out_and_turns_unready(
    rollbackpolicy_crd: KubeCluster,
    kube_namespace: str,
    cut_off: tuple[TcpGate, Path],
    tmp_path: Path,
) -> None:
    """Behind a cut link (the connection open, nothing answered) every API call ends after
    the request timeout, a Lease's duration: the resync and Lease loops come round and
    count the errors, /readyz turns false naming them, and the replica stays alive; when
    the link is back it is ready again, without a restart."""
    link, kubeconfig = cut_off
    cluster: Any = SimpleNamespace(kubeconfig=kubeconfig)
    process = ControllerProcess(
        cluster,
        tmp_path,
        namespace=kube_namespace,
        identity="cut",
        audit=f"sqlite:///{tmp_path / 'audit.db'}",
        extra=("--shards", "1", *TIMING),
    )
    resync_errors = 'rollguard_controller_resyncs_total{result="error"}'
    tick_errors = 'rollguard_controller_lease_ticks_total{result="error"}'

    def ready() -> bool:
        process.check()
        return _get(base, "/readyz")[0] == 200

    def errors() -> tuple[float, float]:
        metrics = _get(base, "/metrics")[1]
        return _sample(metrics, resync_errors) or 0.0, _sample(metrics, tick_errors) or 0.0

    def failing() -> dict[str, Any] | None:
        process.check()
        resyncs, ticks = errors()
        if resyncs <= before[0] or ticks <= before[1]:
            return None  # no call has ended since the cut: the loops are stuck in them
        code, body = _get(base, "/readyz")
        found: dict[str, Any] = json.loads(body)
        return found if code == 503 else None

    try:
        base = process.health_url()
        wait_until(ready, timeout=120, what="the replica ready")
        link.shut()
        before = errors()  # a call under way when the link was cut may still succeed
        unready = wait_until(failing, timeout=60, what="timed-out calls counted, /readyz false")
        assert unready["leases"]["ok"] is False
        assert "timed out" in unready["leases"]["problem"]
        assert _get(base, "/healthz")[0] == 200  # the loops come round: alive
        link.open()
        wait_until(ready, timeout=60, what="the replica ready again")
    finally:
        process.stop()
