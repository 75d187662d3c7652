"""``serve`` keeps watching: a deployment re-arms when data returns after an inconclusive
end, and after a rollback it watches the next release, learned from CI through the API
or, for the Kubernetes executor, from a new Deployment revision (on the real control
plane that tests/servers/kube_cluster.py starts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from serve_harness import TOKEN, policy, recording, start_serve, write_policies

from kube_support import executor as kube_executor
from kube_support import get, image, roll_out
from rollguard.audit.base import AuditSink
from rollguard.controller import SystemClock, Watcher
from rollguard.controller.watch import EvaluationHook
from rollguard.generate.source import PolicySource
from rollguard.notifiers.log import LogNotifier
from rollguard.server.wiring import WatcherFactory
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider
from servers.kube_cluster import KubeCluster
from support import wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}"}
REVISION = "deployment.kubernetes.io/revision"


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


def _revision(cluster: KubeCluster, namespace: str) -> str:
    return str(get(cluster, namespace, "deployment")["metadata"]["annotations"][REVISION])


def _kubernetes_factory(cluster: KubeCluster, namespace: str, provider: InMemoryProvider) -> Any:
    def factory(audit: AuditSink) -> WatcherFactory:
        def build(source: PolicySource, hook: EvaluationHook) -> Watcher:
            return Watcher(
                source.policy,
                provider=provider,
                executor=kube_executor(cluster, namespace),
                notifier=LogNotifier(),
                audit=audit,
                clock=SystemClock(),
                on_evaluation=hook,
            )

        return build

    return factory


@pytest.mark.real_server
def test_a_new_deployment_revision_starts_the_next_watch(
    tmp_path: Path, kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    """On the real control plane: the rollback is a ``rollout undo`` (a revision of its
    own), and ``kubectl set image`` afterwards is the next release."""
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    (tmp_path / "shop.yaml").write_text(policy("shop", "unused.csv"))
    provider = InMemoryProvider(
        {
            (Signal.ERROR_RATE_PERCENT, Version.STABLE): 0.5,
            (Signal.ERROR_RATE_PERCENT, Version.CANARY): 40.0,
            (Signal.LATENCY_P95_MS, Version.STABLE): 100.0,
            (Signal.LATENCY_P95_MS, Version.CANARY): 100.0,
        }
    )
    factory = _kubernetes_factory(kube_cluster, kube_namespace, provider)
    with start_serve(tmp_path, factory=factory) as served:
        served.wait_status("shop", "rolled_back", timeout=120)
        assert image(kube_cluster, kube_namespace) == "shop:1.0"
        undone = get(kube_cluster, kube_namespace, "deployment")["metadata"]["annotations"][
            REVISION
        ]
        assert any(f"or a revision after {undone})" in m for m in _timeline(served, "shop"))
        provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 0.4)
        kube_cluster.kubectl(
            "set", "image", "deployment/shop", "app=shop:3.0", "-n", kube_namespace
        )
        served.wait_status("shop", "watching", timeout=120)
        revision = _revision(kube_cluster, kube_namespace)
        assert revision != undone
        assert served.detail("shop")["release"] == f"revision {revision}"
        releases = [e for e in served.audit.recent(deployment="shop") if e["kind"] == "release"]
        assert releases[0]["evidence"]["source"] == "revision"
        assert releases[0]["evidence"]["requested_by"] == "executor"
