"""A progressive release under a real ``serve``, its HAProxy executor moving a real HAProxy.

The policy steps 10 -> 25 -> 50 -> 100 % on a replay recording played at real time.
Its ``confirm_step`` hook lets a step move on only once the test has written
``go-<weight>`` into ``gates``, so a test, not the machine's speed, says how far
the release may go; ``confirm_promotion`` is the caller's.
"""

from __future__ import annotations

from rollguard.audit.base import AuditSink
from rollguard.server.wiring import WatcherFactory, default_factory
from servers.haproxy import BACKEND, HaproxyServer

MIN_STEP_SECONDS = 1.5
ROWS_PER_SECOND = 8

POLICY = """\
name: shop-progressive
target: {{deployment: shop, executor: {{type: haproxy, socket: '{socket}', backend: {backend}}}}}
metrics: {{provider: replay, file: healthy.csv}}
baseline: {{compare_with: stable}}
analysis: {{interval: 0.25s, min_requests: 20}}
error_rate_trigger: {{threshold: 5%, measurement_window: 10s, action: immediate_rollback}}
promotion:
  steps: [10, 25, 50, 100]
  min_step_duration: {min_step}s
  max_step_duration: 1h
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
