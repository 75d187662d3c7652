"""A real ``serve`` (uvicorn on loopback, in a thread) over a folder of replay policies.

Recordings are CSV files in the replay format; one goes bad (5xx jumps to
12 %) a few seconds of replay time in, one stays healthy. Replay runs 20x
real time; the policies' 0.1 s interval is widened to one 5 s row step
(0.25 s of wall time), so a rollback happens a second or two after start
instead of minutes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from rollguard.audit.base import AuditSink
from rollguard.security.listener import Limits, bind, make_server
from rollguard.server.app import create_app
from rollguard.server.audit_view import AuditStore, AuditView
from rollguard.server.auth import TokenAuth
from rollguard.server.hosts import LOOPBACK_NAMES
from rollguard.server.manager import ControllerManager
from rollguard.server.telemetry import Telemetry
from rollguard.server.wiring import WatcherFactory, default_factory
from support import wait_until

TOKEN = "test-token-0123456789abcdef"
REPLAY_SPEED = 20.0
HEADER = "time,version,requests,errors,latency_p95_ms,memory_mb"


def recording(*, seconds: int, bad_after: float | None) -> str:
    """Rows every 5 s for both versions; the canary's 5xx jump to 12 % after ``bad_after``."""
    rows = [HEADER]
    for at in range(5, seconds + 5, 5):
        rows.append(f"{at},stable,100,1,120,300")
        errors = 12 if bad_after is not None and at > bad_after else 1
        rows.append(f"{at},canary,100,{errors},125,305")
    return "\n".join(rows) + "\n"


def policy(deployment: str, csv: str, *, name: str | None = None) -> str:
    """A replay policy with a 0.1 s interval (evaluated every 0.25 s: one 5 s row at 20x)."""
    return f"""\
name: {name or deployment + "-policy"}
target: {{deployment: {deployment}, executor: {{type: noop}}}}
metrics: {{provider: replay, file: {csv}}}
analysis: {{interval: 0.1s, persistence: 2, min_requests: 20, no_data_limit: 3}}
rollback: {{canary_weight: 20}}
error_rate_trigger: {{threshold: 5%, measurement_window: 10s, action: immediate_rollback}}
latency_trigger: {{threshold: 800ms, measurement_window: 10s, action: gradual_rollback}}
"""


def sequential_policy(csv: str) -> str:
    """``seq``: a sequential error-rate test (alpha 0.01) of the canary against stable."""
    return f"""\
name: seq-policy
target: {{deployment: seq, executor: {{type: noop}}}}
metrics: {{provider: replay, file: {csv}}}
analysis: {{interval: 0.1s, min_requests: 20, no_data_limit: 3}}
baseline: {{compare_with: stable}}
error_rate_trigger:
  threshold: 5%
  measurement_window: 10s
  action: immediate_rollback
  detection: {{method: sequential, alpha: 0.01}}
"""


BROKEN_POLICY = """\
target: {deployment: broken}
metrics: {provider: replay, file: healthy.csv}
error_rate_trigger:
  threshold: five percent
"""


def write_policies(folder: Path) -> None:
    """``shop`` goes bad and is rolled back; ``cart`` stays healthy; ``broken.yaml`` is invalid."""
    (folder / "bad.csv").write_text(recording(seconds=3600, bad_after=20))
    (folder / "healthy.csv").write_text(recording(seconds=7200, bad_after=None))
    (folder / "shop.yaml").write_text(policy("shop", "bad.csv"))
    (folder / "cart.yaml").write_text(policy("cart", "healthy.csv"))
    (folder / "broken.yaml").write_text(BROKEN_POLICY)


@dataclass
class Served:
    """A running ``serve``: its URL, folder, registry and a client."""

    url: str
    folder: Path
    manager: ControllerManager
    registry: CollectorRegistry
    client: httpx.Client
    audit: AuditView
    extra: dict[str, object] = field(default_factory=dict)

    def detail(self, name: str) -> dict[str, object]:
        response = self.client.get(f"/api/v1/deployments/{name}")
        response.raise_for_status()
        body: dict[str, object] = response.json()
        return body

    def wait_status(self, name: str, status: str, *, timeout: float = 20.0) -> dict[str, object]:
        def reached() -> dict[str, object] | None:
            response = self.client.get(f"/api/v1/deployments/{name}")
            if response.status_code != 200:
                return None
            body: dict[str, object] = response.json()
            return body if body["status"] == status else None

        return wait_until(reached, timeout=timeout, what=f"{name} to be {status}")


def _replayed(audit: AuditSink) -> WatcherFactory:
    return default_factory(audit, replay_speed=REPLAY_SPEED)


@contextmanager
def start_serve(
    folder: Path,
    *,
    token: str | None = TOKEN,
    store: AuditStore | None = None,
    lock_retry_seconds: float = 0.2,
    auth: TokenAuth | None = None,
    limits: Limits | None = None,
    allowed_hosts: frozenset[str] | None = LOOPBACK_NAMES,
    factory: Callable[[AuditSink], WatcherFactory] | None = None,
) -> Iterator[Served]:
    """Run the app as ``serve`` does (the guarded listener) on loopback until the caller is done."""
    audit = AuditView(store)
    sink: AuditSink = audit
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    manager = ControllerManager(
        folder,
        factory=(factory or _replayed)(audit.durable()),
        telemetry=telemetry,
        audit=sink,
        reload_seconds=0.2,
        lock_retry_seconds=lock_retry_seconds,
    )
    app = create_app(
        manager,
        telemetry=telemetry,
        auth=auth or TokenAuth(token),
        audit=audit,
        allowed_hosts=allowed_hosts,
    )
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = make_server(app, limits=limits or Limits(), log_level="warning")
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="serve", daemon=True
    )
    thread.start()
    try:
        # Start-up reads the whole folder first: a pathological file takes long under load.
        wait_until(lambda: server.started, timeout=180, what="uvicorn to start")
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            yield Served(url, folder, manager, registry, client, audit)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
