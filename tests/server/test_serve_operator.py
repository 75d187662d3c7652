"""Operator commands leave a durable trace (who asked, why), act through the watcher's
action path, and never leave the deployment's lease behind."""

from __future__ import annotations

from pathlib import Path

from serve_harness import TOKEN, start_serve, write_policies

from rollguard.audit.base import AuditEntry
from rollguard.audit.factory import open_store
from rollguard.server.auth import TokenAuth
from support import wait_until

CI_TOKEN = "ci-token-0123456789abcdef"
CI = {"Authorization": f"Bearer {CI_TOKEN}"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _kinds(entries: list[AuditEntry], watch: str) -> list[str]:
    return [e.record.kind for e in entries if e.record.watch_id == watch]


def test_every_command_is_audited_with_who_asked_and_why(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    write_policies(folder)
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    auth = TokenAuth(named={"ci-pipeline": CI_TOKEN})
    try:
        with start_serve(folder, store=store, auth=auth) as served:
            served.wait_status("cart", "watching")
            wait_until(lambda: store.list(deployment="cart", kind="deployment_start"))
            url = "/api/v1/deployments/cart"
            paused = served.client.post(f"{url}/pause", headers=CI, json={"reason": "freeze"})
            assert paused.json()["status"] == "paused"
            again = served.client.post(f"{url}/pause", headers=CI, json={"reason": "twice"})
            assert again.status_code == 409
            assert served.client.post(f"{url}/resume", headers=CI).json()["status"] == "watching"
            aborted = served.client.post(f"{url}/abort", headers=CI, json={"reason": "bad notes"})
            assert aborted.json()["status"] == "aborted"
        entries = list(store.list(deployment="cart"))
        commands = [e.record for e in entries if e.record.kind == "command"]
        assert [(c.evidence["command"], c.outcome) for c in commands] == [
            ("pause", "accepted"),
            ("pause", "refused"),
            ("resume", "accepted"),
            ("abort", "accepted"),
        ]
        assert {c.evidence["requested_by"] for c in commands} == {"ci-pipeline"}
        assert commands[0].reason == "pause by ci-pipeline: freeze"
        assert "refused: cannot pause 'cart' while it is paused" in commands[1].reason
        # The paused watch was closed as interrupted, saying by whom and why.
        paused_watch = commands[0].watch_id
        end = next(
            e.record
            for e in entries
            if e.record.kind == "deployment_end" and e.record.watch_id == paused_watch
        )
        assert (end.outcome, end.reason) == ("interrupted", "pause by ci-pipeline (freeze)")
        # The abort ran as its own watch through intent, steps and result.
        decision = next(
            e.record
            for e in entries
            if e.record.kind == "decision" and e.record.trigger == "operator"
        )
        assert decision.reason == "abort by ci-pipeline: bad notes"
        assert decision.evidence["operator"] == {
            "command": "abort",
            "requested_by": "ci-pipeline",
            "reason": "bad notes",
        }
        assert _kinds(entries, decision.watch_id) == [
            "deployment_start",
            "decision",
            "action_intent",
            "action_step",
            "action_result",
            "deployment_end",
        ]
        assert store.verify().ok
        assert store.lock_holder("cart") is None
    finally:
        store.close()


def test_rapid_pause_and_resume_never_leave_the_lease_behind(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    write_policies(folder)
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        # A lock retry far longer than the test: a leaked lease would leave cart starting.
        with start_serve(folder, store=store, lock_retry_seconds=3600) as served:
            served.wait_status("cart", "watching")
            url = "/api/v1/deployments/cart"
            for _ in range(40):
                assert served.client.post(f"{url}/pause", headers=AUTH).status_code == 200
                assert served.client.post(f"{url}/resume", headers=AUTH).status_code == 200
            watcher = served.manager.get("cart").watcher
            assert watcher is not None
            holder = wait_until(
                lambda: (h := store.lock_holder("cart")) and h.owner == watcher.watch_id and h,
                what="the resumed watch to hold the lease",
            )
            assert holder.owner == watcher.watch_id
            count = int(str(served.detail("cart")["evaluations"]))
            wait_until(
                lambda: int(str(served.detail("cart")["evaluations"])) > count + 3,
                what="the resumed watch to evaluate",
            )
            assert served.detail("cart")["status"] == "watching"
    finally:
        store.close()
