"""Manual gates on a progressive release: ``rollguard release ...`` against a real ``serve``
whose executor moves a real HAProxy's weights.

The release is healthy (a replay recording), so left alone it would step on; the
tests hold it, let it go, abort it, start it over and promote it, reading each
weight back from HAProxy itself and each gate from the audit trail
(progressive_serve.py has the policy and its ``go-<weight>`` gates).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from progressive_serve import (
    canary_weight,
    gates_recorded,
    haproxy_executor,
    live,
    ops_auth,
    ops_gate,
    promotion,
    release,
    wait_held_with_evidence,
    write_folder,
)
from serve_harness import TOKEN, start_serve

from rollguard.audit.factory import open_store
from servers.haproxy import HaproxyServer
from support import wait_until

pytestmark = pytest.mark.real_server


def test_pause_resume_abort_retry_promote_through_real_haproxy(
    tmp_path: Path,
    canary_haproxy: HaproxyServer,
    rollguard_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    confirmed = tmp_path / "confirmed.txt"
    folder = write_folder(
        tmp_path,
        haproxy_executor(canary_haproxy),
        hook=f"{{command: [/bin/sh, -c, 'echo \"$ROLLGUARD_CANARY_WEIGHT\" >> {confirmed}']}}",
    )
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    auth = ops_auth()

    def gate(*args: str) -> dict[str, Any]:
        return ops_gate(rollguard_cmd, cli_env, served, *args)

    try:
        with start_serve(folder, store=store, auth=auth, factory=live) as served:
            wait_until(lambda: canary_weight(canary_haproxy) == 10, what="the first step, 10%")
            # Pause: held at 10% across intervals in which the evidence would move it on.
            paused = gate("pause", "shop", "--reason", "hold for the load test", "--as", "alice")
            assert (paused["status"], paused["canary_weight"]) == ("paused", 10)
            assert paused["promotion"]["held_by"] == "ops for alice (hold for the load test)"
            (tmp_path / "go-10").touch()  # only the pause holds it now
            wait_held_with_evidence(served)
            assert canary_weight(canary_haproxy) == 10
            assert promotion(served)["step"] == 1
            assert served.detail("shop")["status"] == "paused"
            # Resume: the evidence moves it on at once (to 25%, where confirm_step holds it).
            assert gate("resume", "shop")["status"] == "watching"
            wait_until(lambda: canary_weight(canary_haproxy) == 25, what="a step after resume")
            assert gate("pause", "shop")["canary_weight"] == 25
            # Abort: back to stable, recorded with who asked.
            aborted = gate("abort", "shop", "--reason", "bad release notes", "--as", "bob")
            assert aborted["status"] == "aborted"
            assert canary_weight(canary_haproxy) == 0
            assert canary_haproxy.count_answers(20) == {"stable": 20}
            # Retry: from the first step again (where confirm_step holds it this time).
            (tmp_path / "go-10").unlink()
            assert gate("retry", "shop", "--reason", "notes fixed")["status"] == "watching"
            wait_until(lambda: canary_weight(canary_haproxy) == 10, what="the first step again")
            assert promotion(served)["step"] == 1
            # Promote: through confirm_promotion, straight to 100%.
            promoted = gate("promote", "shop", "--reason", "go")
            assert (promoted["status"], promoted["canary_weight"]) == ("promoted", 100)
            assert canary_weight(canary_haproxy) == 100
            assert canary_haproxy.count_answers(20) == {"canary": 20}
            assert confirmed.read_text().split() == ["10"]
    finally:
        entries = [entry.record for entry in store.list(deployment="shop")]
        store.close()
    gates_recorded(entries)


def test_a_held_release_still_rolls_back_and_a_hook_can_hold_a_promote(
    tmp_path: Path,
    canary_haproxy: HaproxyServer,
    rollguard_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    # The canary goes bad 30 s after the start: after the three CLI calls below even
    # on a loaded machine (each starts a Python process), so they meet a held release.
    folder = write_folder(
        tmp_path,
        haproxy_executor(canary_haproxy),
        hook="{on_failure: hold, command: [/bin/sh, -c, 'exit 3']}",
        bad_after=30,
    )
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    env = {**cli_env, "ROLLGUARD_API_TOKEN": TOKEN}
    try:
        with start_serve(folder, store=store, factory=live) as served:
            wait_until(lambda: canary_weight(canary_haproxy) == 10, what="the first step, 10%")
            paused = release(
                rollguard_cmd, env, served, "pause", "shop", "--as", "carol", output="text"
            )
            assert paused.returncode == 0, paused.stderr
            said = paused.stdout.splitlines()
            assert said[0] == "shop: pause accepted; status paused, canary at 10%"
            held_line = "  step 1 of 4 at 10%, held by operator for carol; next step 25%"
            assert said[1].startswith(held_line)
            assert TOKEN not in paused.stdout + paused.stderr
            early = release(rollguard_cmd, env, served, "retry", "shop")
            assert early.returncode == 7, early.stderr
            assert "cannot retry 'shop' while it is paused" in early.stderr
            held = release(rollguard_cmd, env, served, "promote", "shop", "--reason", "ship it")
            assert held.returncode == 7, held.stderr
            assert "held by hook confirm_promotion" in held.stderr
            assert "Traceback" not in held.stderr
            shown = served.detail("shop")
            assert shown["status"] == "paused"
            assert promotion(served)["step"] == 1
            assert canary_weight(canary_haproxy) == 10
            # Still held when the canary goes bad: the rollback trigger acts anyway.
            served.wait_status("shop", "rolled_back", timeout=90)
            assert canary_weight(canary_haproxy) == 0
    finally:
        entries = [entry.record for entry in store.list(deployment="shop")]
        store.close()
    commands = [(r.evidence["command"], r.outcome) for r in entries if r.kind == "command"]
    assert commands == [("pause", "accepted"), ("retry", "refused"), ("promote", "accepted")]
    hooks = [(r.executor_output["hook"], r.outcome) for r in entries if r.kind == "hook"]
    assert ("confirm_promotion", "failure") in hooks
    rollback = next(r for r in entries if r.kind == "action_result")
    assert rollback.trigger == "error_rate_trigger"
    assert [r.executor_output["canary_weight"] for r in entries if r.kind == "promotion_step"] == [
        10
    ]


def test_a_step_held_at_its_maximum_waits_for_an_operator(
    tmp_path: Path,
    canary_haproxy: HaproxyServer,
    rollguard_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    """``on_max_duration: hold`` under serve: the share stays, paused, until resume or promote."""
    folder = write_folder(
        tmp_path, haproxy_executor(canary_haproxy), hook="{command: [/bin/true]}", max_step="4s"
    )
    (tmp_path / "go-10").touch()  # confirm_step lets 10 % move on, not 25 %
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    env = {**cli_env, "ROLLGUARD_API_TOKEN": TOKEN}
    try:
        with start_serve(folder, store=store, factory=live) as served:
            wait_until(lambda: canary_weight(canary_haproxy) == 25, what="the second step, 25%")
            held = served.wait_status("shop", "paused", timeout=30)
            assert promotion(served)["held_by"] == "max_step_duration"
            evaluations = int(str(held["evaluations"]))
            # No watch runs: nothing moves it back to the first step, nothing moves it on.
            wait_until(
                lambda: len(store.list(deployment="shop", kind="deployment_end")) == 1,
                what="the held watch's end",
            )
            assert served.detail("shop")["status"] == "paused"
            assert canary_weight(canary_haproxy) == 25
            (tmp_path / "go-25").touch()
            resumed = release(rollguard_cmd, env, served, "resume", "shop")
            assert resumed.returncode == 0, resumed.stderr
            wait_until(lambda: canary_weight(canary_haproxy) == 50, what="a step after resume")
            assert int(str(served.detail("shop")["evaluations"])) > evaluations
    finally:
        entries = [entry.record for entry in store.list(deployment="shop")]
        store.close()
    weights = [r.executor_output["canary_weight"] for r in entries if r.kind == "promotion_step"]
    assert weights[:3] == [10, 25, 50]  # never back to 10 % after the hold
    [end, *_] = [r for r in entries if r.kind == "deployment_end"]
    assert end.outcome == "inconclusive"
    assert "held at 25% for an operator" in end.reason
