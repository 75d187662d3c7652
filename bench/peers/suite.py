"""The scenarios, the rows (settings and time scale), and the environment they run in.

Every scenario is a ``bench.detection.simulate.Scenario`` at 100 canary
requests/s and a 20% canary share, the detection benchmark's headline case, in
unscaled seconds; the environment divides time by the row's factor.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s

from bench.detection.simulate import Scenario
from bench.peers.controllers import running_peers
from bench.peers.feed import Exporter, Feed
from bench.peers.harness import Case, Environment
from bench.peers.manifests import DOCS, TUNED, Config, scrape_milliseconds
from bench.peers.observe import Poller
from bench.peers.stepping import STEPPED
from servers.kube_cluster import KubeCluster
from servers.prometheus import ScrapeTarget, running_prometheus

RPS, SHARE = 100.0, 0.2
ONSET = 300.0  # the late fault: 5 minutes after the canary starts


def scenario(name: str, **fields: object) -> Scenario:
    return Scenario(name, RPS, SHARE, 0.0, **fields)  # type: ignore[arg-type]


BAD = [
    scenario("errors 1%->5%", fault="errors", error_rate=0.05),
    scenario("errors 1%->10%", fault="errors", error_rate=0.10),
    scenario("latency +30%", fault="latency", log_shift=math.log(1.3)),
    scenario("errors 1%->5%, 5 min in", fault="errors", error_rate=0.05, onset_seconds=ONSET),
]
HEALTHY = [
    scenario("healthy", noise="plain"),
    scenario("healthy, bursts", noise="bursty"),
    scenario("healthy, incident on both", noise="incident"),
]


@dataclass(frozen=True)
class Row:
    """One configuration of all three tools at one common time scale."""

    config: Config
    scale: float
    scenarios: list[Scenario]
    cap: float | None = None  # seconds watched after the onset (None: whole canaries)


#: Flagger's kubernetes tutorial interval (30 s) at its 10 s floor bounds the factor: 3.
DOCUMENTED = Row(DOCS, 3.0, [*BAD, *HEALTHY])
#: At the 10 s floor nothing can be scaled; bad releases only, each watched 5 minutes.
SHORTEST = Row(TUNED, 1.0, BAD[:3], cap=300.0)

#: The CI test's settings: every outcome near-certain, runs of a couple of minutes.
SMOKE = Config(
    "smoke",
    argo_interval=10.0,
    argo_pause=20.0,
    flagger_interval=10.0,
    flagger_iterations=6,
    flagger_success_window=10.0,
    flagger_duration_window=10.0,
    flagger_success_min=95.0,
)
SMOKE_ROW = Row(
    SMOKE,
    1.0,
    [scenario("errors 1%->10%", fault="errors", error_rate=0.10), scenario("healthy")],
)


def cases(row: Row, bad_runs: int, healthy_runs: int, first_seed: int = 1) -> list[Case]:
    """``bad_runs`` of each bad scenario and ``healthy_runs`` of each healthy one."""
    found = []
    seed = first_seed
    for item in row.scenarios:
        for _ in range(healthy_runs if item.fault is None else bad_runs):
            found.append(Case(item, row.config, row.scale, seed, row.cap))
            seed += 1
    return found


@contextmanager
def environment(
    cluster: KubeCluster, directory: Path, scale: float, api: k8s.ApiClient
) -> Iterator[Environment]:
    """Exporter, Prometheus (a scrape every 5 s / ``scale``), both controllers, a poller."""
    feed = Feed()
    with ExitStack() as stack:
        exporter = stack.enter_context(Exporter(feed))
        prometheus = stack.enter_context(
            running_prometheus(
                directory / f"prometheus-{scale:g}",
                [ScrapeTarget(exporter.address, {}, job="synthetic")],
                scrape_interval=f"{scrape_milliseconds(scale)}ms",
            )
        )
        peers = stack.enter_context(
            running_peers(cluster, prometheus.url, control_loop_seconds=10.0 / scale)
        )
        poller = stack.enter_context(Poller(api))

        def check_running() -> None:
            cluster.check_running()
            peers.check_running()

        yield Environment(
            cluster,
            api,
            prometheus.url,
            feed,
            poller,
            [sys.executable, "-m", "rollguard"],
            directory,
            check_running,
        )


#: The promotion row (bench/peers/stepping.py): Flagger's 1m interval at its 10 s floor
#: would allow 6; the documented row's 3 is kept. Faults start with the release.
PROMOTION_ROW = Row(
    STEPPED,
    3.0,
    [
        scenario("healthy", noise="plain"),
        scenario("errors 1%->5%", fault="errors", error_rate=0.05),
    ],
)
