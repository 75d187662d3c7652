"""A watch stopped by a signal records how it ended; a closed stdout never stops it."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from rollguard.audit.factory import open_store

LIVE = """\
target: {deployment: live}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}
analysis: {interval: 1s, no_data_limit: 100000}
error_rate_trigger: {threshold: 5%}
"""

REPLAY = """\
target: {deployment: shop}
metrics: {provider: replay, file: series.csv}
error_rate_trigger: {threshold: 5%, measurement_window: 1 minute}
"""


def _watch(folder: Path, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """``rollguard watch -p policy.yaml --for 1h -o json`` in ``folder``, stdout piped."""
    return subprocess.Popen(
        [*cmd, "watch", "-p", "policy.yaml", "--for", "1h", "-o", "json"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kinds(folder: Path) -> list[tuple[str, str]]:
    store = open_store(f"sqlite:///{folder / '.rollguard' / 'audit.db'}", create=False)
    try:
        return [(e.record.kind, e.record.outcome) for e in store.list()]
    finally:
        store.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_records_an_interrupted_end_and_exits_128_plus_it(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str], signum: signal.Signals
) -> None:
    (tmp_path / "policy.yaml").write_text(LIVE)
    with _watch(tmp_path, rollguard_cmd, cli_env) as process:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())  # the watch has started
        assert first["type"] == "evaluation"
        process.send_signal(signum)
        rest, errors = process.communicate(timeout=30)  # bounded: a hung watch fails here
    assert process.returncode == 128 + signum, errors
    last = json.loads(rest.splitlines()[-1])
    assert last == {
        "type": "interrupted",
        "deployment": "live",
        "signal": signum.name,
        "left": "recorded",
    }
    assert _kinds(tmp_path) == [("deployment_start", ""), ("deployment_end", "interrupted")]
    store = open_store(f"sqlite:///{tmp_path / '.rollguard' / 'audit.db'}", create=False)
    try:
        end = store.list(kind="deployment_end")[0].record
    finally:
        store.close()
    assert end.evidence == {"stopped_by": signum.name}  # no release: the policy has no steps
    assert end.reason == f"stopped by {signum.name} before a verdict"


def test_a_closed_stdout_never_stops_the_watch_nor_exits_1(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    rows = ["time,version,requests,errors,latency_p95_ms,memory_mb"]
    for at in range(5, 3605, 5):  # an hour of evaluations: far more than a pipe holds
        rows += [f"{at},stable,400,2,120,300", f"{at},canary,100,1,130,305"]
    (tmp_path / "series.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "policy.yaml").write_text(REPLAY)
    with _watch(tmp_path, rollguard_cmd, cli_env) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert json.loads(process.stdout.readline())["type"] == "evaluation"
        process.stdout.close()  # `| head -1`
        errors = process.stderr.read()
        process.wait(timeout=60)
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
    assert _kinds(tmp_path)[-1] == ("deployment_end", "healthy")
