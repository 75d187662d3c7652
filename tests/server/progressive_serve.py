"""A progressive release under a real ``serve``, its executor moving a real HAProxy (or the
real test Kubernetes cluster's Deployments: the policy's ``executor`` is the caller's).

The policy steps 10 -> 25 -> 50 -> 100 % on a replay recording played at real time.
Its ``confirm_step`` hook lets a step move on only once the test has written
``go-<weight>`` into ``gates``, so a test, not the machine's speed, says how far
the release may go; ``confirm_promotion`` is the caller's. :func:`write_folder`
lays the policy and its recording out for ``serve``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from serve_harness import TOKEN, Served

from rollguard.audit.base import AuditRecord, AuditSink
from rollguard.server.auth import TokenAuth
from rollguard.server.wiring import WatcherFactory, default_factory
from servers.haproxy import BACKEND, HaproxyServer
from support import wait_until

MIN_STEP_SECONDS = 1.5
ROWS_PER_SECOND = 8
#: The token the gates tests' operator asks with: named ``ops`` by serve, read from OPS_TOKEN.
OPS_TOKEN = "ops-token-0123456789abcdef"

POLICY = """\
name: shop-progressive
target: {{deployment: shop, executor: {executor}}}
metrics: {{provider: replay, file: healthy.csv}}
baseline: {{compare_with: stable}}
analysis: {{interval: 0.25s, min_requests: 20}}
error_rate_trigger: {{threshold: 5%, measurement_window: 10s, action: immediate_rollback}}
promotion:
  steps: [10, 25, 50, 100]
  min_step_duration: {min_step}s
  max_step_duration: {max_step}
  hooks:
    confirm_step:
      on_failure: hold
      command: [/bin/sh, -c, 'test -e "{gates}/go-$ROLLGUARD_CANARY_WEIGHT"']
    confirm_promotion: {hook}
"""


def recording(seconds: int, *, bad_after: float | None = None) -> str:
    """Both versions at 1 % errors, 1,000 requests a row, 8 rows a second (every interval
    sees two); after ``bad_after`` seconds the canary's errors jump to 20 %."""
    rows = ["time,version,requests,errors,latency_p95_ms,memory_mb"]
    for tick in range(1, seconds * ROWS_PER_SECOND + 1):
        at = tick / ROWS_PER_SECOND
        errors = 200 if bad_after is not None and at > bad_after else 10
        rows += [f"{at},stable,1000,10,120,300", f"{at},canary,1000,{errors},121,301"]
    return "\n".join(rows) + "\n"


def write_folder(
    tmp_path: Path,
    executor: str,
    *,
    hook: str,
    bad_after: float | None = None,
    max_step: str = "1h",
) -> Path:
    """``tmp_path/policies`` holding ``shop.yaml`` over ten minutes of :func:`recording`.

    ``executor`` is the policy's executor (YAML flow, e.g. :func:`haproxy_executor`);
    ``hook`` is the ``confirm_promotion`` hook; ``confirm_step`` reads its
    ``go-<weight>`` gates in ``tmp_path``.
    """
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "healthy.csv").write_text(recording(600, bad_after=bad_after))
    policy = POLICY.format(
        executor=executor,
        min_step=MIN_STEP_SECONDS,
        max_step=max_step,
        gates=tmp_path,
        hook=hook,
    )
    (folder / "shop.yaml").write_text(policy)
    return folder


def haproxy_executor(haproxy: HaproxyServer) -> str:
    """The policy's executor for the test's HAProxy."""
    return f"{{type: haproxy, socket: '{haproxy.socket_path}', backend: {BACKEND}}}"


def live(audit: AuditSink) -> WatcherFactory:
    """Recordings played at real time: each 0.25 s interval's window holds two rows."""
    return default_factory(audit, replay_speed=1.0)


def canary_weight(haproxy: HaproxyServer) -> int:
    """The weight new requests see on the canary, as HAProxy itself reports it."""
    state = haproxy.command(f"show servers state {BACKEND}")
    for line in state.splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[3] == "canary":
            admin = int(fields[6])  # srv_admin_state: maintenance bits
            return 0 if admin & 0x1F else int(fields[7])
    raise AssertionError(f"no canary in HAProxy's state: {state}")


def promotion(served: Served) -> dict[str, Any]:
    """The deployment's promotion as ``serve``'s API shows it."""
    found = served.detail("shop").get("promotion")
    assert isinstance(found, dict), "the deployment shows no promotion"
    return found


def wait_held_with_evidence(served: Served) -> None:
    """Wait until the step has evidence and time enough to move on (two more evaluations):
    what still holds it is a gate, not the evidence."""
    before = int(str(served.detail("shop")["evaluations"]))

    def ready_but_held() -> bool:
        step = promotion(served)
        return bool(
            int(str(served.detail("shop")["evaluations"])) >= before + 2
            and step["accepted"]
            and step["step_seconds"] >= MIN_STEP_SECONDS
        )

    wait_until(ready_but_held, timeout=30, what="evidence enough to step, held")


def release(
    rollguard_cmd: list[str], env: dict[str, str], served: Served, *args: str, output: str = "json"
) -> subprocess.CompletedProcess[str]:
    """``rollguard release ARGS --server URL``, as an operator runs it."""
    return subprocess.run(
        [*rollguard_cmd, "release", *args, "--server", served.url, "-o", output],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def gates_recorded(entries: list[AuditRecord]) -> list[AuditRecord]:
    """Checks the trail of the gates tests: pause (for alice), resume, pause, abort (for bob),
    retry, promote, each asked with the token named ``ops``; the abort as a rollback; the
    retry's first step. Returns the ``command`` entries."""
    commands = [r for r in entries if r.kind == "command"]
    assert [(c.evidence["command"], c.outcome) for c in commands] == [
        ("pause", "accepted"),
        ("resume", "accepted"),
        ("pause", "accepted"),
        ("abort", "accepted"),
        ("retry", "accepted"),
        ("promote", "accepted"),
    ]
    assert {c.evidence["requested_by"] for c in commands} == {"ops"}
    assert commands[3].reason == "abort by ops for bob: bad release notes"
    assert commands[3].evidence["on_behalf_of"] == "bob"
    # The abort ran through intent, step and result, saying who asked.
    result = next(r for r in entries if r.kind == "action_result" and r.trigger == "operator")
    assert result.reason == "abort by ops for bob: bad release notes"
    assert result.outcome == "success"
    hooks = [r for r in entries if r.kind == "hook"]
    assert [h.executor_output["hook"] for h in hooks if h.outcome == "success"] == [
        "confirm_step",  # 10 -> 25, after the resume
        "confirm_promotion",
    ]
    weights = [r.executor_output["canary_weight"] for r in entries if r.kind == "promotion_step"]
    assert weights == [10, 25, 10]  # the retry's first step after the abort
    return commands


def ops_auth() -> TokenAuth:
    """serve's tokens for the gates tests: ``ops`` for the operator's CLI, ``operator`` for
    the harness's own calls."""
    return TokenAuth(named={"ops": OPS_TOKEN, "operator": TOKEN})


def ops_gate(
    rollguard_cmd: list[str], cli_env: dict[str, str], served: Served, *args: str
) -> dict[str, Any]:
    """``rollguard release ARGS`` with the ``ops`` token, its JSON answer; the token is
    never printed."""
    env = {**cli_env, "OPS_TOKEN": OPS_TOKEN}
    done = release(rollguard_cmd, env, served, *args, "--token-env", "OPS_TOKEN")
    assert done.returncode == 0, done.stderr
    assert OPS_TOKEN not in done.stdout + done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer
