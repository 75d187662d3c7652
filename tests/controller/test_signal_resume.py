"""SIGTERM or SIGINT a real ``rollguard watch`` mid-promotion: the release keeps its step.

A cancelled CI job (SIGTERM) or a Ctrl-C stops the watch, not the release: the
stopped watch records which signal stopped it and where the release stands,
the canary stays at its share, and the next watch resumes at that step, as
after a SIGKILL. Every step is taken once: the next watch's first entry sets the
recorded step again (``resumed``), then goes on. ``--restart`` starts over.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from file_executor import FileExecutor, read_state, write_state
from signal_watch import healthy_canary

from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from rollguard.audit.sql import SqlAuditStore
from rollguard.controller import Outcome, SimulatedClock, Watcher
from rollguard.notifiers.log import LogNotifier
from rollguard.policy import parse_policy
from support import wait_until

SCRIPT = Path(__file__).with_name("signal_watch.py")
STEPS = [10, 25, 50, 100]
POLICY = """
target: {{deployment: shop}}
metrics: {{provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}}
analysis: {{interval: 0.2s}}
error_rate_trigger: {{increase_percent: 200, compare_with: stable, measurement_window: 1 minute}}
promotion: {{steps: {steps}, min_step_duration: 3s}}
audit: {{url: "sqlite:///{db}"}}
"""


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    state = tmp_path / "deployment.json"
    write_state(state, {"canary_weight": 0, "canary_state": "drained", "history": []})
    db = tmp_path / "audit.db"
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(steps=STEPS, db=db))
    return state, db, policy


def _watch(state: Path, policy: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(state), "watch", "--policy", str(policy), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _records(db: Path, kind: str) -> list[AuditRecord]:
    store = open_store(f"sqlite:///{db}")
    try:
        return [entry.record for entry in store.list(deployment="shop", kind=kind)]
    finally:
        store.close()


def _stop_at_second_step(
    state: Path, db: Path, policy: Path, env: dict[str, str], signum: signal.Signals, *extra: str
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run a watch until the release has moved past its first step, then send ``signum``;
    its exit, and the step its last ``promotion_step`` recorded."""
    with _watch(state, policy, env, *extra) as watch:  # its pipes closed whatever happens
        try:
            wait_until(
                lambda: (
                    watch.poll() is not None
                    or (db.exists() and len(_records(db, "promotion_step")) >= 2)
                ),
                timeout=90,
                what="the release at its second step",
            )
            assert watch.poll() is None, "the watch ended before its second step"
            watch.send_signal(signum)
            stdout, stderr = watch.communicate(timeout=60)
        finally:
            if watch.poll() is None:
                watch.kill()
    done = subprocess.CompletedProcess(watch.args, watch.returncode, stdout, stderr)
    assert watch.returncode == 128 + signum, stderr[-2000:]
    last = _records(db, "promotion_step")[-1].executor_output
    return done, int(last["step"])


def _run_to_its_end(state: Path, policy: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    """The next watch, run until it ends by itself (exit 0); its JSON lines."""
    with _watch(state, policy, env, "--for", "10m", "--output", "json") as watch:
        try:
            stdout, stderr = watch.communicate(timeout=100)
        finally:
            if watch.poll() is None:
                watch.kill()
    assert watch.returncode == 0, stderr[-2000:]
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize(("signum", "output"), [(signal.SIGTERM, "json"), (signal.SIGINT, "text")])
def test_a_release_stopped_by_a_signal_is_resumed_at_its_step(
    tmp_path: Path, cli_env: dict[str, str], signum: signal.Signals, output: str
) -> None:
    state, db, policy = _setup(tmp_path)
    stopped, step = _stop_at_second_step(
        state, db, policy, cli_env, signum, "--for", "10m", "--output", output
    )
    weight = STEPS[step - 1]
    assert 2 <= step < len(STEPS), "stopped mid-promotion"
    assert read_state(state)["canary_weight"] == weight  # the canary stays where it was
    if output == "json":
        said = json.loads(stopped.stdout.strip().splitlines()[-1])
        assert said["type"] == "interrupted"
        assert said["signal"] == signum.name
        assert said["left"] == "recorded"
        release = {"step": step, "of": len(STEPS), "canary_weight": weight, "resumable": True}
        assert said["release"] == release
    else:
        assert (
            f"INTERRUPTED by {signum.name}: deployment_end recorded (outcome interrupted); "
            f"the release stays at step {step} of {len(STEPS)}, canary at {weight}%"
        ) in " ".join(stopped.stderr.split())
    [first_end] = _records(db, "deployment_end")
    assert first_end.outcome == "interrupted"
    assert first_end.evidence["stopped_by"] == signum.name
    assert first_end.evidence["release"]["step"] == step
    assert first_end.reason.startswith(f"stopped by {signum.name} at step {step} of 4")

    lines = _run_to_its_end(state, policy, cli_env)
    result = lines[-1]
    assert result["type"] == "result"
    assert result["outcome"] == "promoted"
    evaluations = [line for line in lines if line.get("promotion")]
    assert evaluations[0]["promotion"]["step"] == step  # taken up where it stood

    starts = [record.watch_id for record in _records(db, "deployment_start")]
    assert len(starts) == 2
    first, then = starts
    taken = [
        (r.watch_id, r.executor_output["step"], r.reason) for r in _records(db, "promotion_step")
    ]
    by_first = [s for watch, s, _ in taken if watch == first]
    by_then = [s for watch, s, _ in taken if watch == then]
    assert by_first == list(range(1, step + 1))
    assert by_then == list(range(step, len(STEPS) + 1))  # the stopped step, set again, on
    resumed = next(reason for watch, _, reason in taken if watch == then)
    assert resumed == (
        f"{weight}%: resumed at step {step} after watch {first} was stopped by {signum.name}"
    )
    weights = [w for _, w in read_state(state)["history"]]
    assert weights == sorted(weights), "the canary never stepped back down"
    assert weights == [*STEPS[:step], weight, *STEPS[step:]]
    ends = [(r.watch_id, r.outcome) for r in _records(db, "deployment_end")]
    assert ends == [(first, "interrupted"), (then, "promoted")]
    store = open_store(f"sqlite:///{db}")
    assert store.verify().ok
    store.close()


async def test_restart_starts_a_stopped_release_over(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    state, db, policy = _setup(tmp_path)
    _, step = _stop_at_second_step(state, db, policy, cli_env, signal.SIGTERM, "--for", "10m")
    store = open_store(f"sqlite:///{db}")
    assert isinstance(store, SqlAuditStore)
    watcher = _in_process(policy, state, store)
    result = await watcher.run(duration_seconds=3600, restart=True)
    assert result.outcome is Outcome.PROMOTED
    taken = [
        entry.record.executor_output["step"]
        for entry in store.list(deployment="shop", kind="promotion_step")
        if entry.record.watch_id == watcher.watch_id
    ]
    assert taken == [1, 2, 3, 4]  # from the first step again
    assert [w for _, w in read_state(state)["history"]][step : step + 1] == [STEPS[0]]
    [start] = [
        entry.record
        for entry in store.list(deployment="shop", kind="deployment_start")
        if entry.record.watch_id == watcher.watch_id
    ]
    assert start.evidence["restart"] is True
    assert start.reason.endswith("the release starts over at its first step")
    assert store.verify().ok
    store.close()


def _in_process(policy: Path, state: Path, store: SqlAuditStore) -> Watcher:
    """The next watch in this process on a simulated clock (the release's time runs at once)."""
    text = policy.read_text()
    return Watcher(
        parse_policy(text),
        provider=healthy_canary(),
        executor=FileExecutor(state),
        notifier=LogNotifier(),
        audit=store,
        clock=SimulatedClock(time.time() + 600),
    )
