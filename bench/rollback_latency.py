"""Decision → 100 % of traffic on stable through a real HAProxy, and fault → detection →
recovery on real parts (HAProxy + Prometheus + the watch loop).

    python bench/rollback_latency.py [--trials 20] [--detection-trials 5] [--demo-trials 5]

Part 1 starts HAProxy (Debian ``haproxy``) in front of two loopback HTTP servers
that answer their version name, puts the canary at 20 %, keeps two client
threads sending requests through HAProxy, then calls the HAProxy executor's
``rollback`` (and, separately, ``isolate``) and measures from the call
("decision") to:

- *confirmed*: the executor returned, having read HAProxy's state back;
- *all on stable*: the send time of the first request after which every request
  was answered by stable (in-flight requests that reached the canary count);
- *last canary answer*: the last canary answer received.

Part 2 adds Prometheus (Debian ``prometheus``, scraping HAProxy's exporter every
second) and runs the real watch loop (error-rate trigger, 5 s window, 0.5 s
interval, persistence 2) with the canary at 50 %. Each trial makes the canary
fail every second request and measures fault → decision (detection) and
fault → all traffic on stable (recovery).

Part 3 runs ``rollguard demo --stack real`` itself (the demo services as child
processes, its load generator, its scaled seed policy: error-rate scenario, 10 %
of the canary's answers fail) and reports fault → detection and fault →
recovery from the demo's own timeline.

Goal (issue 3): under 100 ms from decision to 100 % on stable. Prints the
median, p90 and max, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from rollguard.audit.base import MemoryAuditSink  # noqa: E402
from rollguard.controller import Outcome, Watcher  # noqa: E402
from rollguard.controller.clock import SystemClock  # noqa: E402
from rollguard.executors.haproxy import HaproxyExecutor  # noqa: E402
from rollguard.metrics.prometheus import PrometheusProvider  # noqa: E402
from rollguard.notifiers.log import LogNotifier  # noqa: E402
from rollguard.policy import parse_policy  # noqa: E402
from rollguard.policy.model import HaproxyExecutorSpec, PrometheusSource  # noqa: E402
from servers.haproxy import BACKEND, HaproxyServer, running_haproxy  # noqa: E402
from servers.real_stack import CANARY_REQUESTS, RealStack, running_real_stack  # noqa: E402
from servers.traffic import Traffic  # noqa: E402
from servers.version_http import running_version_servers  # noqa: E402

Row = tuple[str, str, float, float, float]


def _summary(action: str, label: str, values: list[float]) -> Row:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return action, label, statistics.median(ordered), p90, ordered[-1]


def _reset(haproxy: HaproxyServer, canary_weight: int) -> None:
    haproxy.command(
        f"set server {BACKEND}/canary state ready;"
        f"set server {BACKEND}/canary weight {canary_weight};"
        f"set server {BACKEND}/stable weight {100 - canary_weight}"
    )


def _switch_times(traffic: Traffic, since: float) -> tuple[float, float]:
    """(send time of the first request of the all-stable run, last canary answer received)."""
    answers = traffic.since(since)
    canary = [a for a in answers if a.version == "canary"]
    last_sent = max((a.sent for a in canary), default=since)
    last_received = max((a.received for a in canary), default=since)
    first_stable = min((a.sent for a in answers if a.sent > last_sent), default=last_sent)
    return first_stable, last_received


def _one_rollback(
    haproxy: HaproxyServer, executor: HaproxyExecutor, traffic: Traffic, action: str
) -> tuple[float, float, float]:
    _reset(haproxy, 20)
    settle = time.perf_counter()
    while not any(a.version == "canary" for a in traffic.since(settle)):
        time.sleep(0.005)
    decision = time.perf_counter()
    result = asyncio.run(getattr(executor, action)())
    confirmed = time.perf_counter()
    if not result.ok:
        raise SystemExit(f"{action} failed: {result.detail}")
    time.sleep(0.2)  # let the traffic show where requests go after the switch
    first_stable, last_canary = _switch_times(traffic, decision - 1.0)
    return (
        1000 * (confirmed - decision),
        1000 * max(0.0, first_stable - decision),
        1000 * max(0.0, last_canary - decision),
    )


def rollback_rows(trials: int) -> list[Row]:
    """Part 1: executor calls against a real HAProxy under load."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_version_servers("stable", "canary") as versions,
        running_haproxy(
            Path(tmp),
            stable=versions["stable"].address,
            canary=versions["canary"].address,
            canary_weight=20,
        ) as haproxy,
        Traffic(haproxy.url) as traffic,
    ):
        spec = HaproxyExecutorSpec(socket=str(haproxy.socket_path), backend=BACKEND)
        executor = HaproxyExecutor(spec)
        rows = []
        for action in ("rollback", "isolate"):
            runs = [_one_rollback(haproxy, executor, traffic, action) for _ in range(trials)]
            for index, label in enumerate(("confirmed", "all on stable", "last canary answer")):
                rows.append(_summary(action, label, [run[index] for run in runs]))
        print(f"part 1: {len(traffic.answers)} requests through HAProxy", file=sys.stderr)
    return rows


def _one_detection(stack: RealStack, traffic: Traffic) -> tuple[float, float]:
    _reset(stack.haproxy, 50)
    canary = stack.versions["canary"]
    canary.fault.fail_every = 0
    errors = CANARY_REQUESTS.replace("}", ',code="5xx"}')
    deadline = time.monotonic() + 60
    while (stack.prometheus.value(f"sum(increase({errors}[5s]))") or 0) > 0 or (
        stack.prometheus.value(f"sum(increase({CANARY_REQUESTS}[5s]))") or 0
    ) < 20:  # a clean window with canary traffic before the fault
        if time.monotonic() > deadline:
            raise SystemExit("the canary's error window never cleared")
        time.sleep(0.2)
    policy = parse_policy(stack.policy_yaml(window="5s", interval="0.5s", no_data_limit=10))
    assert isinstance(policy.metrics, PrometheusSource)
    assert isinstance(policy.target.executor, HaproxyExecutorSpec)

    async def watch() -> tuple[float, float, float]:
        provider = PrometheusProvider(policy.metrics)
        watcher = Watcher(
            policy,
            provider=provider,
            executor=HaproxyExecutor(policy.target.executor),
            notifier=LogNotifier(),
            audit=MemoryAuditSink(),
            clock=SystemClock(),
        )
        task = asyncio.create_task(watcher.run(duration_seconds=60))
        fault_wall, fault_perf = time.time(), time.perf_counter()
        canary.fault.fail_every = 2
        result = await task
        await provider.aclose()
        if result.outcome is not Outcome.ROLLED_BACK or result.decided_at is None:
            raise SystemExit(f"expected a rollback, got {result.outcome}: {result.reason}")
        return fault_wall, fault_perf, result.decided_at

    fault_wall, fault_perf, decided_wall = asyncio.run(watch())
    time.sleep(0.3)
    first_stable, _ = _switch_times(traffic, fault_perf)
    return 1000 * (decided_wall - fault_wall), 1000 * (first_stable - fault_perf)


def detection_rows(trials: int) -> list[Row]:
    """Part 2: the whole loop on real parts."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_real_stack(Path(tmp), canary_weight=50) as stack,
        Traffic(stack.haproxy.url, pause_seconds=0.005) as traffic,
    ):
        runs = [_one_detection(stack, traffic) for _ in range(trials)]
    return [
        _summary("watch", "fault -> decision", [run[0] for run in runs]),
        _summary("watch", "fault -> all stable", [run[1] for run in runs]),
    ]


def demo_rows(trials: int) -> list[Row]:
    """Part 3: ``rollguard demo --stack real``, error-rate scenario."""
    from rollguard.demo.run import DemoSettings, run_demo
    from rollguard.demo.scenarios import SCENARIOS

    detect, recover = [], []
    for _ in range(trials):
        result = asyncio.run(run_demo(SCENARIOS["error-rate"], settings=DemoSettings(stack="real")))
        if result.detect_seconds is None or result.recover_seconds is None:
            raise SystemExit(f"the demo did not roll back: {result.watch.reason}")
        detect.append(1000 * result.detect_seconds)
        recover.append(1000 * result.recover_seconds)
    return [
        _summary("demo", "fault -> decision", detect),
        _summary("demo", "fault -> all stable", recover),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--detection-trials", type=int, default=5, help="0 skips part 2")
    parser.add_argument("--demo-trials", type=int, default=5, help="0 skips part 3")
    args = parser.parse_args()
    rows = rollback_rows(args.trials)
    if args.detection_trials:
        rows += detection_rows(args.detection_trials)
    if args.demo_trials:
        rows += demo_rows(args.demo_trials)
    print(
        f"HAProxy {args.trials} trials per action; "
        f"real-stack watch {args.detection_trials} trials; "
        f"demo --stack real {args.demo_trials} trials"
    )
    print(f"{'action':<10} {'measured':<22} {'median ms':>10} {'p90 ms':>9} {'max ms':>9}")
    for action, label, median, p90, worst in rows:
        print(f"{action:<10} {label:<22} {median:>10.1f} {p90:>9.1f} {worst:>9.1f}")


if __name__ == "__main__":
    main()
