"""One run of the promotion row: the three tools step their canaries, timed from the API server.

Like ``harness.run_case``, a run has a namespace of its own with each tool's
objects (``bench.peers.stepping``), settles them, and gives all three the new
image at one moment. Unlike it, rollguard's watch starts with the release: its
promotion begins when it starts, so its start-up counts in its time. Each tool
reads series of its own that follow the share it set; the run's outcomes add
the time each had all the traffic on the new version (``promoted_at``) and the
canary requests each served until its traffic was back on stable
(``exposed``).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace

from kubernetes import client as k8s

from bench.peers import manifests, stepping
from bench.peers.harness import (
    GRACE,
    INTERRUPTED,
    READY_TIMEOUT,
    SETTLE_TIMEOUT,
    Case,
    Environment,
    Outcome,
    Watch,
    create,
    follow,
    outcomes_of,
    read_watch,
    release,
    watch_rollguard,
    watch_seconds,
)
from bench.peers.manifests import ARGO, FLAGGER, ROLLGUARD, TOOLS
from bench.peers.observe import PREFIX, Objects
from bench.peers.stepping import PODS, SteppedRun, series
from servers.kube_cluster import wait_for_service_account
from servers.process import terminate

#: Watched past the longest documented canary: Argo's move to 100% after its last
#: pause, Flagger's promotion and finalising (unscaled seconds).
MARGIN = 180.0


def _settled(objects: Objects) -> bool:
    def phase(kind: str, name: str) -> str | None:
        item = next((o for o in objects.get(kind, []) if o["metadata"]["name"] == name), None)
        return ((item or {}).get("status") or {}).get("phase")

    stable = next(
        (d for d in objects.get("deployments", []) if d["metadata"]["name"] == "rollguard"), None
    )
    return (
        phase("rollouts", "argo") == "Healthy"
        and phase("canaries", "flagger") == "Initialized"
        and stable is not None
        and (stable.get("status") or {}).get("availableReplicas", 0) == PODS
    )


def run_stepped_case(env: Environment, case: Case, index: int) -> dict[str, Outcome]:
    """Run ``case`` of the promotion row; each tool's outcome."""
    namespace = f"{PREFIX}{index}-{case.seed}"
    k8s.CoreV1Api(env.api).create_namespace({"metadata": {"name": namespace}})
    seconds = watch_seconds(case) + MARGIN
    scenario = replace(case.scenario, seconds=seconds + GRACE * case.scale + 60)
    runs = {
        tool: SteppedRun(series(namespace, tool), scenario, case.scale, case.seed * 10 + number)
        for number, tool in enumerate(TOOLS)
    }

    def listen(at: float, objects: Objects) -> None:
        for tool, share in stepping.shares(objects).items():
            runs[tool].observe(at, share)

    watch = Watch(namespace, states=stepping.STATES, listen=listen)
    env.poller.subscribe(watch)
    for run in runs.values():
        env.feed.add(run)
    process: subprocess.Popen[bytes] | None = None
    try:
        wait_for_service_account(env.cluster, env.api, namespace)
        prometheus = env.prometheus_url
        argo = manifests.argo(series(namespace, ARGO), prometheus, case.config, case.scale)
        create(env, namespace, argo)
        flagger = stepping.flagger(series(namespace, FLAGGER), prometheus, case.config, case.scale)
        create(env, namespace, flagger)
        create(env, namespace, stepping.rollguard_objects())
        watch.wait(_settled, SETTLE_TIMEOUT, "Rollout Healthy, Canary Initialized, Deployment up")
        start = time.monotonic()
        for run in runs.values():
            run.start = start
        release(env, namespace, rollguard="rollguard-canary")
        process, log = watch_rollguard(
            env,
            case,
            namespace,
            READY_TIMEOUT + seconds / case.scale,
            run=series(namespace, ROLLGUARD),
            policy_of=stepping.rollguard_policy,
        )
        stopped, code = follow(env, watch, process, start + seconds / case.scale)
        onset = start + case.scenario.onset_seconds / case.scale
        end = time.monotonic()
        found = outcomes_of(
            watch, onset, case.scale, INTERRUPTED if stopped else code, code, stepped=True
        )
        # The row's faults start with the release (onset 0): every canary request counts.
        for tool, outcome in found.items():
            drained = watch.first.get((tool, "drained"))
            outcome.exposed = runs[tool].canary_requests(end if drained is None else drained)
        read_watch(log, found[ROLLGUARD])
        return found
    finally:
        if process is not None and process.poll() is None:
            terminate(process)
        env.poller.unsubscribe(watch)
        for run in runs.values():
            env.feed.remove(run.name)
        k8s.CoreV1Api(env.api).delete_namespace(namespace)
