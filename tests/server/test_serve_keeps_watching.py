"""``serve`` keeps watching: a deployment re-arms when data returns after an inconclusive
end, and after a rollback it watches the next release, learned from CI through the API
or, for the Kubernetes executor, from a new Deployment revision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from serve_harness import TOKEN, policy, recording, start_serve, write_policies

from rollguard.audit.base import AuditSink
from rollguard.controller import SystemClock, Watcher
from rollguard.controller.watch import EvaluationHook
from rollguard.executors.kubernetes import KubernetesExecutor
from rollguard.generate.source import PolicySource
from rollguard.notifiers.log import LogNotifier
from rollguard.policy.model import KubernetesExecutorSpec
from rollguard.server.wiring import WatcherFactory
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider
from servers.kube_api import REVISION, running_cluster
from support import wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _timeline(served: Any, name: str) -> list[str]:
    return [str(item["message"]) for item in served.detail(name)["timeline"]]


def test_a_release_posted_by_ci_is_watched_after_a_rollback(tmp_path: Path) -> None:
    write_policies(tmp_path)
    with start_serve(tmp_path) as served:
        served.wait_status("shop", "rolled_back")
        url = "/api/v1/deployments/shop/releases"
        refused = served.client.post(url, json={"version": "v2.0.1"})
        assert refused.status_code == 401
        posted = served.client.post(
            url, headers=AUTH, json={"version": "v2.0.1", "reason": "fix shipped"}
        )
        assert posted.status_code == 201, posted.text
        assert posted.json() == {"deployment": "shop", "version": "v2.0.1", "status": "watching"}
        assert served.detail("shop")["release"] == "v2.0.1"
        # The new release goes bad too (same recording): it is judged afresh and rolled back.
        served.wait_status("shop", "rolled_back")
        assert any("release v2.0.1 (operator)" in m for m in _timeline(served, "shop"))
        releases = [e for e in served.audit.recent(deployment="shop") if e["kind"] == "release"]
        assert [(e["evidence"]["version"], e["evidence"]["source"]) for e in releases] == [
            ("v2.0.1", "api")
        ]
        assert releases[0]["reason"] == "release v2.0.1 by operator: fix shipped"
        assert (
            served.client.post(url, headers=AUTH, json={"version": "bad version"}).status_code
            == 422
        )


def test_a_release_while_watching_restarts_the_watch_and_a_paused_one_stays_paused(
    tmp_path: Path,
) -> None:
    write_policies(tmp_path)
    with start_serve(tmp_path) as served:
        served.wait_status("cart", "watching")
        url = "/api/v1/deployments/cart"
        first = served.manager.get("cart").watcher
        assert first is not None
        before = first.watch_id
        wait_until(lambda: first.watch_id and served.detail("cart")["evaluations"])
        posted = served.client.post(f"{url}/releases", headers=AUTH, json={"version": "v7"})
        assert posted.json()["status"] == "watching"
        wait_until(lambda: served.manager.get("cart").watcher.watch_id != before)  # type: ignore[union-attr]
        ended = [
            e
            for e in served.audit.recent(deployment="cart")
            if e["kind"] == "deployment_end" and e["watch_id"] == before
        ]
        assert ended[0]["reason"] == "superseded by release v7"
        assert served.client.post(f"{url}/pause", headers=AUTH).json()["status"] == "paused"
        paused = served.client.post(f"{url}/releases", headers=AUTH, json={"version": "v8"})
        assert paused.json()["status"] == "paused"
        assert served.detail("cart")["release"] == "v8"


def test_an_inconclusive_deployment_rearms_when_data_returns(tmp_path: Path) -> None:
    rows = recording(seconds=600, bad_after=None).splitlines()
    header, body = rows[0], rows[1:]
    # No rows from 20 s to 120 s of replay time: no data for a while, then data again.
    kept = [row for row in body if not 20 < int(row.split(",")[0]) <= 120]
    (tmp_path / "gap.csv").write_text("\n".join([header, *kept]) + "\n")
    (tmp_path / "gap.yaml").write_text(policy("gap", "gap.csv"))
    with start_serve(tmp_path) as served:
        served.wait_status("gap", "inconclusive")
        served.wait_status("gap", "watching", timeout=30)
        messages = _timeline(served, "gap")
        assert "waiting for data to return" in messages
        assert "data returned: watching again" in messages


def _kubernetes_factory(cluster_url: str, provider: InMemoryProvider) -> Any:
    def factory(audit: AuditSink) -> WatcherFactory:
        def build(source: PolicySource, hook: EvaluationHook) -> Watcher:
            configuration = k8s.Configuration()
            configuration.host = cluster_url
            executor = KubernetesExecutor(
                KubernetesExecutorSpec(deployment="shop", poll_interval=0.05),
                api_client=k8s.ApiClient(configuration),
            )
            return Watcher(
                source.policy,
                provider=provider,
                executor=executor,
                notifier=LogNotifier(),
                audit=audit,
                clock=SystemClock(),
                on_evaluation=hook,
            )

        return build

    return factory


def test_a_new_deployment_revision_starts_the_next_watch(tmp_path: Path) -> None:
    """Against the in-process Kubernetes API server (tests/servers/kube_api.py)."""
    (tmp_path / "shop.yaml").write_text(policy("shop", "unused.csv"))
    provider = InMemoryProvider(
        {
            (Signal.ERROR_RATE_PERCENT, Version.STABLE): 0.5,
            (Signal.ERROR_RATE_PERCENT, Version.CANARY): 40.0,
            (Signal.LATENCY_P95_MS, Version.STABLE): 100.0,
            (Signal.LATENCY_P95_MS, Version.CANARY): 100.0,
        }
    )
    with running_cluster() as cluster:
        cluster.add_deployment("shop", images=["shop:v1", "shop:v2"])
        with start_serve(tmp_path, factory=_kubernetes_factory(cluster.url, provider)) as served:
            served.wait_status("shop", "rolled_back")
            rolled_back_to = cluster.get("deployments", "shop")["metadata"]["annotations"][REVISION]
            assert any(
                f"or a revision after {rolled_back_to})" in m for m in _timeline(served, "shop")
            )
            provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 0.4)
            cluster.release("shop", "shop:v3")
            served.wait_status("shop", "watching")
            revision = cluster.get("deployments", "shop")["metadata"]["annotations"][REVISION]
            assert revision != rolled_back_to
            assert served.detail("shop")["release"] == f"revision {revision}"
            releases = [e for e in served.audit.recent(deployment="shop") if e["kind"] == "release"]
            assert releases[0]["evidence"]["source"] == "revision"
            assert releases[0]["evidence"]["requested_by"] == "executor"
