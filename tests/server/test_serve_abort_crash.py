"""SIGKILL ``rollguard serve`` and its rollback command in the middle of an operator's abort,
restart it: the trail shows the abort, and the restarted serve finishes it (issue: the abort
left no intent, and the restart went back to watching with the canary still serving)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

import httpx
from serve_harness import TOKEN, recording
from serve_process import serve_process

from rollguard.audit.factory import open_store
from support import process_running, wait_until

POLICY = """\
name: web-policy
target:
  deployment: web
  executor:
    type: command
    shell: true
    timeout: 60s
    rollback:
      - >-
        echo $$ >> {pids}; echo start >> {log};
        until [ -e {go} ]; do sleep 0.01; done; echo end >> {log}
metrics: {{provider: replay, file: healthy.csv}}
analysis: {{interval: 0.1s, persistence: 2, min_requests: 20, no_data_limit: 3}}
error_rate_trigger: {{threshold: 5%, measurement_window: 10s, action: immediate_rollback}}
"""


def _status(url: str, name: str) -> str | None:
    try:
        response = httpx.get(f"{url}/api/v1/deployments/{name}", timeout=2)
    except httpx.HTTPError:
        return None
    return str(response.json()["status"]) if response.status_code == 200 else None


def _abort(url: str) -> None:
    """Ask for the abort; the answer never comes (serve is killed meanwhile)."""
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(
            f"{url}/api/v1/deployments/web/abort",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"reason": "page fired"},
            timeout=60,
        )


def test_an_abort_killed_mid_way_is_in_the_trail_and_finished_after_a_restart(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    folder, pids, log, go = (
        tmp_path / "policies",
        tmp_path / "pids",
        tmp_path / "log",
        tmp_path / "go",
    )
    folder.mkdir()
    (folder / "healthy.csv").write_text(recording(seconds=7200, bad_after=None))
    (folder / "web.yaml").write_text(POLICY.format(pids=pids, log=log, go=go))
    db = tmp_path / "audit.db"
    store_options = ("--audit-url", f"sqlite:///{db}", "--replay-speed", "20")
    with serve_process(folder, rollguard_cmd, cli_env, *store_options) as (serve, url):
        wait_until(lambda: _status(url, "web") == "watching", timeout=30, what="web watching")
        abort = threading.Thread(target=_abort, args=(url,), daemon=True)
        abort.start()
        wait_until(lambda: pids.exists() and pids.read_text(), what="the rollback command to run")
        command = int(pids.read_text().split()[0])
        serve.send_signal(signal.SIGKILL)
        os.kill(command, signal.SIGKILL)
        serve.wait()
        wait_until(lambda: not process_running(command), what="the killed command to be gone")
    store = open_store(f"sqlite:///{db}")
    try:
        kinds = [e.record.kind for e in store.list(deployment="web")]
        assert "action_intent" in kinds  # the abort was recorded before it acted
        assert "action_result" not in kinds
        intent = store.list(deployment="web", kind="action_intent")[0].record
        assert (intent.trigger, intent.reason) == ("operator", "abort by operator: page fired")
    finally:
        store.close()
    go.touch()  # the restarted rollback may now finish
    with serve_process(folder, rollguard_cmd, cli_env, *store_options) as (_, url):
        wait_until(lambda: _status(url, "web") == "aborted", timeout=60, what="the abort finished")
    store = open_store(f"sqlite:///{db}")
    try:
        entries = store.list(deployment="web")
        aborted = intent.watch_id
        kinds = [e.record.kind for e in entries if e.record.watch_id == aborted]
        assert kinds == [
            "deployment_start",
            "decision",
            "action_intent",
            "action_result",
            "deployment_end",
        ]
        result = next(e.record for e in entries if e.record.kind == "action_result")
        assert result.outcome == "success"
        assert result.executor_output["recovered"] is True
        assert store.verify().ok
    finally:
        store.close()
    # The killed command's run never overlapped the restarted one.
    assert log.read_text().splitlines() == ["start", "start", "end"]
