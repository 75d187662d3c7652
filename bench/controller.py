"""The controller's query layer at scale: batched vs per-deployment PromQL, N deployments.

    python bench/controller.py [--deployments 100,1000,10000] [--interval 5] [--ticks 6]
                               [--per-deployment-up-to 1000]

A real Prometheus (Debian package) scrapes a synthetic exporter
(tests/servers/fleet.py, its own process) that serves the stable and canary
series of the largest N deployments, so no pod needs to run. For each N and
each mode, a fresh process runs N watchers exactly as ``rollguard controller``
assembles them (:func:`rollguard.controller.assemble.assemble`, aligned ticks,
one shared :class:`~rollguard.metrics.batching.QueryBatcher` in batched mode;
one :class:`~rollguard.metrics.prometheus.PrometheusProvider` each otherwise),
every policy with an error-rate and a p95-latency trigger against the stable
version (8 instant queries per deployment per interval when asked alone). It
reports:

- queries per interval and per second, as Prometheus itself counted them
  (``prometheus_http_requests_total{handler="/api/v1/query"}``);
- evaluation lag: from each tick to each deployment's evaluation (p50, p99),
  and from each tick to the last deployment evaluated (max over ticks);
- whether every deployment was evaluated at every tick;
- the process's peak RSS.

The RollbackPolicy / API-server side (N resources over 3 replicas) needs the
control plane of tools/kubernetes/build.sh and is not part of this script.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from servers.prometheus import ScrapeTarget, running_prometheus  # noqa: E402
from support import free_port  # noqa: E402

WINDOW = "30s"
SCRAPE = "5s"


def policy_spec(
    address: str, interval: float, name: str, executor: dict[str, str] | None = None
) -> dict[str, object]:
    """A policy for deployment ``name`` of the fleet: an error-rate and a p95-latency
    trigger against the stable version (a policy file's content, or a RollbackPolicy's
    spec)."""
    selector = f'namespace="ns0",deployment="{name}",version='
    return {
        "target": {"deployment": name, "executor": executor or {"type": "noop"}},
        "metrics": {
            "provider": "prometheus",
            "address": address,
            "stable_selector": selector + '"stable"',
            "canary_selector": selector + '"canary"',
        },
        "analysis": {"interval": f"{interval:g}s"},
        "baseline": {"compare_with": "stable"},
        "error_rate_trigger": {
            "threshold": "5%",
            "measurement_window": WINDOW,
            "action": "immediate_rollback",
        },
        "latency_trigger": {
            "threshold": "30% increase from baseline",
            "measurement_window": WINDOW,
            "action": "gradual_rollback",
        },
    }


@contextlib.contextmanager
def fleet_prometheus(deployments: int, folder: Path) -> Iterator[str]:
    """A real Prometheus scraping the synthetic exporter of ``deployments`` (its own
    process), once its window holds data; yields Prometheus' URL."""
    port = free_port()
    exporter = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests/servers/fleet.py"),
            "--deployments",
            str(deployments),
            "--bad-every",
            "0",
            "--port",
            str(port),
        ]
    )
    try:
        target = ScrapeTarget(f"127.0.0.1:{port}", {}, job="fleet")
        with running_prometheus(folder, [target], scrape_interval=SCRAPE) as prometheus:
            print(
                f"Prometheus {prometheus.url}, {deployments} deployments exported; "
                f"filling the {WINDOW} window",
                file=sys.stderr,
            )
            time.sleep(40)  # the window must hold data before the first evaluation
            yield prometheus.url
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)


def queries_counted(address: str) -> float:
    text = httpx.get(f"{address}/metrics", timeout=120).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line
    )


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def child(
    address: str, deployments: int, batched: bool, interval: float, ticks: int
) -> dict[str, object]:
    """Run N watchers for ``ticks`` aligned ticks; what happened, as one JSON object."""
    from rollguard.audit.base import MemoryAuditSink
    from rollguard.controller.assemble import Overrides, assemble
    from rollguard.controller.clock import SystemClock
    from rollguard.metrics.batching import QueryBatcher
    from rollguard.metrics.prometheus import PrometheusProvider
    from rollguard.policy.load import parse_policy
    from rollguard.policy.model import PrometheusSource

    template = parse_policy(json.dumps(policy_spec(address, interval, "d00000")))
    assert isinstance(template.metrics, PrometheusSource)
    batcher = QueryBatcher()
    audit = MemoryAuditSink()
    done: list[tuple[int, float, float]] = []  # (deployment, evaluation time, when evaluated)
    watchers = []
    for n in range(deployments):
        name = f"d{n:05}"
        metrics = template.metrics.model_copy(
            update={
                "stable_selector": f'namespace="ns0",deployment="{name}",version="stable"',
                "canary_selector": f'namespace="ns0",deployment="{name}",version="canary"',
            }
        )
        policy = template.model_copy(
            update={
                "target": template.target.model_copy(update={"deployment": name}),
                "metrics": metrics,
            }
        )
        provider = batcher.provider(metrics) if batched else PrometheusProvider(metrics)
        watchers.append(
            assemble(
                policy,
                Overrides(
                    base_dir=ROOT,
                    metrics=provider,
                    audit=audit,
                    clock=SystemClock(),
                    baseline=None,
                    on_evaluation=lambda evaluation, n=n: done.append(
                        (n, evaluation.at, time.time())
                    ),
                    align_ticks=True,
                ),
            )
        )
    # start just after a tick, so the first (unaligned) evaluation is not mistaken for one
    start_at = (int(time.time() / interval) + 1) * interval + interval / 4
    await asyncio.sleep(start_at - time.time())
    first_tick = (int(start_at / interval) + 1) * interval
    last_tick = first_tick + (ticks - 1) * interval
    # the watches end (with one more evaluation) just before the tick after the last
    end = last_tick + interval * 0.9
    tasks = [asyncio.create_task(w.run(duration_seconds=end - start_at)) for w in watchers]
    await asyncio.sleep(first_tick - time.time() - 0.2)
    before = await asyncio.to_thread(queries_counted, address)
    cpu_before = time.process_time()
    await asyncio.sleep(last_tick + interval * 0.8 - time.time())
    cpu = time.process_time() - cpu_before
    after = await asyncio.to_thread(queries_counted, address)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    for watcher in watchers:
        await watcher.provider.aclose()
    per_tick: dict[int, dict[int, float]] = {}
    for n, at, when in done:
        tick = math.floor(at / interval + 1e-3)  # the tick this evaluation was due at
        if first_tick - 1e-6 <= tick * interval <= last_tick + 1e-6:
            per_tick.setdefault(tick, {}).setdefault(n, when - tick * interval)
    lags = sorted(lag for found in per_tick.values() for lag in found.values())
    complete = sum(1 for found in per_tick.values() if len(found) == deployments)
    return {
        "deployments": deployments,
        "mode": "batched" if batched else "per-deployment",
        "ticks": len(per_tick),
        "ticks_complete": complete,
        "queries_per_interval": (after - before) / ticks,
        "lag_p50": lags[len(lags) // 2] if lags else None,
        "lag_p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None,
        "lag_all_max": max((max(found.values()) for found in per_tick.values()), default=None),
        "rss_mb": peak_rss_mb(),
        "cpu_per_tick_s": cpu / ticks,
        "failed": len(failed),
        "outcomes": sorted(
            {str(r.outcome.value) for r in results if not isinstance(r, BaseException)}
        ),
        "reasons": sorted({r.reason for r in results if not isinstance(r, BaseException)})[:3],
        "evaluations": len(done),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", default="100,1000,10000")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--ticks", type=int, default=6)
    parser.add_argument("--per-deployment-up-to", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile each run (stderr)")
    parser.add_argument(
        "--child", nargs=3, metavar=("ADDRESS", "N", "MODE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        address, n, mode = args.child
        run = child(address, int(n), mode == "batched", args.interval, args.ticks)
        if args.profile:
            import cProfile
            import pstats

            with cProfile.Profile() as profile:
                found = asyncio.run(run)
            pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        else:
            found = asyncio.run(run)
        print(json.dumps(found))
        return
    sizes = [int(n) for n in args.deployments.split(",")]
    rows = []
    with (
        tempfile.TemporaryDirectory() as folder,
        fleet_prometheus(max(sizes), Path(folder)) as address,
    ):
        for n in sizes:
            for mode in ("batched", "per-deployment"):
                if mode == "per-deployment" and n > args.per_deployment_up_to:
                    continue
                print(f"N={n} {mode}...", file=sys.stderr)
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        *(["--profile"] if args.profile else []),
                        "--interval",
                        str(args.interval),
                        "--ticks",
                        str(args.ticks),
                        "--child",
                        address,
                        str(n),
                        mode,
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode != 0 or args.profile:
                    print(out.stderr[-8000:], file=sys.stderr)
                if out.returncode != 0:
                    continue
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), file=sys.stderr)
    print_table(rows, args.interval, args.ticks)


def print_table(rows: list[dict[str, object]], interval: float, ticks: int) -> None:
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\ninterval {interval:g} s, {ticks} ticks, load average {' '.join(load)}\n")
    print(
        "| deployments | mode | queries / interval | queries / s | lag p50 s | lag p99 s "
        "| tick → all evaluated, max s | every deployment every tick | peak RSS MB "
        "| CPU s / interval |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for row in rows:
        qpi = float(row["queries_per_interval"])
        every = (
            "yes"
            if row["ticks_complete"] == row["ticks"] and not row["failed"]
            else (f"{row['ticks_complete']}/{row['ticks']} ticks")
        )
        print(
            f"| {row['deployments']:,} | {row['mode']} | {qpi:,.0f} | {qpi / interval:,.1f} "
            f"| {_s(row['lag_p50'])} | {_s(row['lag_p99'])} | {_s(row['lag_all_max'])} "
            f"| {every} | {float(row['rss_mb']):,.0f} | {float(row['cpu_per_tick_s']):.2f} |"
        )


def _s(value: object) -> str:
    return "—" if value is None else f"{float(value):.3f}"


if __name__ == "__main__":
    main()
