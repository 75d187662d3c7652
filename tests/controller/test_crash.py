"""SIGKILL a real watcher at every step of a rollback; the next watch finishes the job.

After each crash: the deployment ends fully rolled back, every entry written
before the crash is still there unchanged, the interrupted watch is closed by
``action_result``/``recovery``/``deployment_end`` entries, and the chain verifies.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from crash_watch import next_watch
from file_executor import read_state, write_state

from rollguard.audit.factory import open_store
from rollguard.controller import Outcome
from rollguard.errors import LockedError
from support import wait_until

SCRIPT = Path(__file__).with_name("crash_watch.py")

IMMEDIATE = [
    ("audit:decision:1", "decision"),
    ("audit:action_intent:1", "action_intent"),
    ("exec:rollback:1", "action_intent"),
    ("audit:action_step:1", "action_step"),
    ("audit:action_result:1", "action_result"),
]
GRADUAL = [
    ("audit:action_intent:1", "action_intent"),
    ("exec:set_canary_weight:1", "action_intent"),
    ("audit:action_step:1", "action_step"),
    ("exec:set_canary_weight:2", "action_step"),
    ("audit:action_step:3", "action_step"),
    ("audit:action_step:4", "action_step"),
    ("audit:action_result:1", "action_result"),
]


def _start(tmp_path: Path) -> tuple[Path, str]:
    state = tmp_path / "deployment.json"
    write_state(state, {"canary_weight": 100, "canary_state": "serving", "history": []})
    return state, f"sqlite:///{tmp_path / 'audit.db'}"


def _crash(state: Path, db: str, action: str, crash: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(state), db, action, crash],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -9, done.stderr[-2000:]


@pytest.mark.parametrize(
    ("action", "crash", "last_kind"),
    [("immediate", *case) for case in IMMEDIATE] + [("gradual", *case) for case in GRADUAL],
)
async def test_a_killed_rollback_is_completed_by_the_next_watch(
    tmp_path: Path, cli_env: dict[str, str], action: str, crash: str, last_kind: str
) -> None:
    state, db = _start(tmp_path)
    _crash(state, db, action, crash, cli_env)
    store = open_store(db)
    before = store.list()
    assert before[-1].record.kind == last_kind  # written durably just before the kill
    crashed_watch = before[0].record.watch_id
    watcher = next_watch(action, state, store, healthy=False, at=1_795_000_600.0)
    result = await watcher.run(duration_seconds=60)
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.reason.startswith("recovered: ")
    final = read_state(state)
    assert final["canary_weight"] == 0
    weights = [weight for _, weight in final["history"]]
    assert weights == sorted(weights, reverse=True), "traffic never went back to the canary"
    after = store.list()
    assert [(e.id, e.hash) for e in after[: len(before)]] == [(e.id, e.hash) for e in before]
    added = [(e.record.kind, e.record.watch_id) for e in after[len(before) :]]
    closing = [("deployment_end", crashed_watch)]
    if last_kind != "action_result":
        closing.insert(0, ("action_result", crashed_watch))
    assert [k for k in added if k[0] != "recovery"] == closing
    assert ("recovery", watcher.watch_id) in added
    assert store.verify().ok
    assert store.lock_holder("shop") is None  # released at the end
    store.close()


async def test_a_killed_progressive_release_is_taken_up_at_its_step(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    state = tmp_path / "deployment.json"
    write_state(state, {"canary_weight": 0, "canary_state": "drained", "history": []})
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    _crash(state, db, "progressive", "audit:promotion_step:2", cli_env)  # killed at 50 %
    assert read_state(state)["canary_weight"] == 50
    store = open_store(db)
    crashed = store.list()[0].record.watch_id
    watcher = next_watch("progressive", state, store, healthy=True, at=1_795_000_600.0)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.PROMOTED
    # Taken up at 50 % (set again), then on to 100 %: never back to the first step.
    assert [weight for _, weight in read_state(state)["history"]] == [10, 50, 50, 100]
    steps = [
        entry.record
        for entry in store.list(deployment="shop", kind="promotion_step")
        if entry.record.watch_id == watcher.watch_id
    ]
    assert [step.executor_output["canary_weight"] for step in steps] == [50, 100]
    assert steps[0].reason == f"50%: resumed at step 2 after watch {crashed} was interrupted"
    ends = store.list(deployment="shop", kind="deployment_end")
    assert [(e.record.watch_id, e.record.outcome) for e in ends] == [
        (crashed, "interrupted"),
        (watcher.watch_id, "promoted"),
    ]
    assert store.verify().ok
    store.close()


@pytest.mark.parametrize(
    ("second_crash", "last_watch"),
    [
        ("exec:set_canary_weight:1", "second"),  # killed setting the share again, unrecorded
        ("audit:deployment_end:1", "first"),  # killed right after recovery closed the first
    ],
)
async def test_a_release_killed_again_while_taken_up_keeps_its_step(
    tmp_path: Path, cli_env: dict[str, str], second_crash: str, last_watch: str
) -> None:
    """The watch that takes a killed release up is killed too, before it recorded the step
    it took up: the next one still takes the release up at that step, never the first."""
    state = tmp_path / "deployment.json"
    write_state(state, {"canary_weight": 0, "canary_state": "drained", "history": []})
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    _crash(state, db, "progressive", "audit:promotion_step:2", cli_env)  # killed at 50 %
    _crash(state, db, "progressive", second_crash, cli_env)
    store = open_store(db)
    starts = [e.record.watch_id for e in store.list(deployment="shop", kind="deployment_start")]
    assert len(starts) == (2 if last_watch == "second" else 1)
    assert len(store.list(deployment="shop", kind="promotion_step")) == 2  # 10 %, 50 %
    watcher = next_watch("progressive", state, store, healthy=True, at=1_795_001_200.0)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.PROMOTED
    weights = [weight for _, weight in read_state(state)["history"]]
    assert weights[:2] == [10, 50]
    assert weights[2:] == ([50, 50, 100] if last_watch == "second" else [50, 100])
    steps = [
        entry.record
        for entry in store.list(deployment="shop", kind="promotion_step")
        if entry.record.watch_id == watcher.watch_id
    ]
    assert [step.executor_output["step"] for step in steps] == [2, 3]
    killed = starts[-1]
    assert steps[0].reason == f"50%: resumed at step 2 after watch {killed} was interrupted"
    ends = store.list(deployment="shop", kind="deployment_end")
    assert [(e.record.watch_id, e.record.outcome) for e in ends] == [
        *((watch, "interrupted") for watch in starts),
        (watcher.watch_id, "promoted"),
    ]
    assert store.verify().ok
    store.close()


def test_a_second_watcher_on_the_same_deployment_is_refused(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    state, db = _start(tmp_path)
    first = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(state), db, "healthy", "none"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = open_store(db)
    try:
        holder = wait_until(lambda: store.lock_holder("shop"), timeout=60, what="first lock")
        assert holder.pid == first.pid
        second = next_watch("healthy", state, store, healthy=True, at=1_795_000_600.0)
        with pytest.raises(LockedError, match=r"deployment 'shop' is already watched by \w+ \(pid"):
            asyncio.run(second.run(duration_seconds=10))
    finally:
        first.kill()
        first.wait()
        store.close()
