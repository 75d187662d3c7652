"""Manual gates on a progressive release through a Gateway API HTTPRoute on the real test cluster.

``rollguard release pause|resume|abort`` against a real ``serve`` whose executor
steps the canary through the HTTPRoute's backend weights: each gate is checked
by the weights the API server stores for the route (read with ``kubectl``), by
the Deployment the abort rolled back, and by the audit trail (who asked, for
whom, why). The release is healthy, so left alone it would step on;
``confirm_step`` lets a step go only once the test has written ``go-<weight>``
(progressive_serve.py).
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest
from progressive_serve import (
    live,
    ops_auth,
    ops_gate,
    wait_held_with_evidence,
    write_folder,
)
from serve_harness import start_serve

from kube_support import ROUTERS, create, get, image, roll_out
from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from servers.kube_cluster import KubeCluster
from support import wait_until

pytestmark = pytest.mark.real_server

KIND = "gateway-httproute"


@pytest.fixture
def routed(kube_cluster: KubeCluster, kube_namespace: str, router_crds: list[str]) -> str:
    """``shop`` rolled out from 1.0 to 2.0 (the canary), its HTTPRoute at 80/20."""
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    create(kube_cluster, kube_namespace, ROUTERS[KIND][1]())
    return kube_namespace


def _executor(cluster: KubeCluster, namespace: str) -> str:
    spec = {
        "type": "kubernetes",
        "deployment": "shop",
        "namespace": namespace,
        "kubeconfig": str(cluster.kubeconfig),
        "poll_interval": 0.2,
        "rollout_timeout": 90,
        "router": {"kind": KIND, **ROUTERS[KIND][2]},
    }
    return json.dumps(spec)


def test_pause_resume_abort_move_the_httproute_weights(
    tmp_path: Path,
    kube_cluster: KubeCluster,
    routed: str,
    rollguard_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    namespace = routed
    folder = write_folder(
        tmp_path, _executor(kube_cluster, namespace), hook="{command: [/bin/true]}"
    )
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")

    def gate(*args: str) -> dict[str, Any]:
        return ops_gate(rollguard_cmd, cli_env, served, *args)

    def weights() -> tuple[int, int]:
        """(stable, canary) as the API server stores them in the HTTPRoute."""
        route = get(kube_cluster, namespace, "httproute", "shop")
        refs = {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}
        return refs["shop-stable"], refs["shop-canary"]

    def at_first_step() -> bool:
        shown = served.detail("shop").get("promotion")
        return weights() == (90, 10) and isinstance(shown, dict) and shown["step"] == 1

    try:
        with start_serve(folder, store=store, auth=ops_auth(), factory=live) as served:
            wait_until(at_first_step, timeout=60, what="the route at 90/10, the first step")
            # Pause: held at 10 % across intervals in which the evidence would move it on.
            paused = gate("pause", "shop", "--reason", "hold for the load test", "--as", "alice")
            assert (paused["status"], paused["canary_weight"]) == ("paused", 10)
            (tmp_path / "go-10").touch()  # only the pause holds it now
            wait_held_with_evidence(served)
            assert weights() == (90, 10)
            # Resume: on to 25 %, where confirm_step holds it (no go-25).
            assert gate("resume", "shop")["status"] == "watching"
            wait_until(lambda: weights() == (75, 25), timeout=60, what="the route at 75/25")
            # Abort: the route back to stable, and the Deployment rolled back.
            aborted = gate("abort", "shop", "--reason", "bad release notes", "--as", "bob")
            assert (aborted["status"], aborted["canary_weight"]) == ("aborted", 0)
            assert weights() == (100, 0)
            assert image(kube_cluster, namespace) == "shop:1.0"
    finally:
        entries = [entry.record for entry in store.list(deployment="shop")]
        store.close()
    _recorded(entries)


def _recorded(entries: list[AuditRecord]) -> None:
    """Each gate with who asked (the token's name) and for whom; the abort as a rollback; the
    route's steps."""
    commands = [r for r in entries if r.kind == "command"]
    assert [(c.evidence["command"], c.outcome) for c in commands] == [
        ("pause", "accepted"),
        ("resume", "accepted"),
        ("abort", "accepted"),
    ]
    assert {c.evidence["requested_by"] for c in commands} == {"ops"}
    me = getpass.getuser()  # whom the CLI names without --as
    assert [c.evidence.get("on_behalf_of") for c in commands] == ["alice", me, "bob"]
    assert commands[0].reason == "pause by ops for alice: hold for the load test"
    assert commands[2].reason == "abort by ops for bob: bad release notes"
    results = [r for r in entries if r.kind == "action_result" and r.trigger == "operator"]
    assert [(r.reason, r.outcome) for r in results] == [
        ("abort by ops for bob: bad release notes", "success"),
    ]
    # traffic moved first, then the Deployment undone; the status read back after it
    first, *_, last = results[0].executor_output["steps"]
    assert first["detail"].startswith("router: canary at 0%; deployment/shop rolled back to")
    assert (last["step"], last["canary_weight"]) == ("status", 0)
    steps = [r.executor_output for r in entries if r.kind == "promotion_step"]
    assert [(s["canary_weight"], s["detail"]) for s in steps] == [
        (10, "router: canary at 10%"),
        (25, "router: canary at 25%"),
    ]
