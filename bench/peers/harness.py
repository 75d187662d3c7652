"""One run: the three tools on one scenario at once, timed from the API server.

A run gets a namespace of its own holding Argo Rollouts' ``Rollout`` ``argo``,
Flagger's ``Canary`` over Deployment ``flagger``, and the Deployment
``rollguard`` that ``rollguard watch`` guards. Each starts at the first image
and settles (Rollout Healthy, Canary Initialized, Deployment rolled out); then,
at one moment, the run's series start playing, all three get the second image
and ``rollguard watch`` starts. From then on the poller's snapshots say when each
tool decided and when it was back on stable (``bench.peers.observe``).
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client as k8s

from bench.detection.simulate import Scenario
from bench.peers import manifests
from bench.peers.feed import Feed, Run, play
from bench.peers.manifests import ARGO, FLAGGER, IMAGES, ROLLGUARD, TOOLS, Config
from bench.peers.observe import PREFIX, STATES, Objects, Poller, Snapshot
from servers.kube_cluster import KubeCluster, wait_for_service_account
from servers.process import terminate

#: Settling a run's objects before the release (wall seconds; a loaded machine is slow).
SETTLE_TIMEOUT = 180.0
#: After the last tool's watch ends: time for a decision already made to show.
GRACE = 30.0


@dataclass(frozen=True)
class Case:
    """One run: a scenario (unscaled seconds), the row's settings, and its seed."""

    scenario: Scenario
    config: Config
    scale: float
    seed: int
    #: Seconds after the onset a tool is watched at most (None: its whole canary).
    cap: float | None = None

    @property
    def name(self) -> str:
        return f"{self.scenario.name} #{self.seed}"


@dataclass
class Outcome:
    """One tool on one run, in unscaled seconds from the onset (None: never)."""

    tool: str
    decided: float | None = None
    recovered: float | None = None
    promoted: bool = False
    note: str = ""


@dataclass
class Environment:
    """What every run shares."""

    cluster: KubeCluster
    api: k8s.ApiClient
    prometheus_url: str
    feed: Feed
    poller: Poller
    rollguard_cmd: list[str]
    directory: Path
    check_running: Callable[[], None] = lambda: None


@dataclass
class _Watch:
    """The snapshots one run has seen: first time each tool's state turned true."""

    namespace: str
    first: dict[tuple[str, str], float] = field(default_factory=dict)
    objects: Objects = field(default_factory=dict)
    seen: threading.Event = field(default_factory=threading.Event)

    def __call__(self, snapshot: Snapshot) -> None:
        self.objects = snapshot.namespaces.get(self.namespace, {})
        for tool, state_of in STATES.items():
            state = state_of(self.objects)
            for what in ("decided", "recovered", "promoted"):
                if getattr(state, what):
                    self.first.setdefault((tool, what), snapshot.at)
        self.seen.set()

    def wait(self, condition: Callable[[Objects], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.objects):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.namespace}: {what} within {timeout:.0f}s")
            self.seen.clear()
            self.seen.wait(timeout=1.0)


def _phase(objects: Objects, kind: str, name: str) -> str | None:
    for item in objects.get(kind, []):
        if item["metadata"]["name"] == name:
            phase: str | None = (item.get("status") or {}).get("phase")
            return phase
    return None


def _settled(objects: Objects) -> bool:
    deployments = {d["metadata"]["name"]: d for d in objects.get("deployments", [])}
    rollguard = deployments.get("rollguard")
    return (
        _phase(objects, "rollouts", "argo") == "Healthy"
        and _phase(objects, "canaries", "flagger") == "Initialized"
        and rollguard is not None
        and (rollguard.get("status") or {}).get("availableReplicas", 0) == 2
    )


def _create(env: Environment, namespace: str, objects: list[dict[str, object]]) -> None:
    stream = "\n".join(json.dumps(o) for o in objects)
    env.cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=stream)


def _release(env: Environment, namespace: str) -> None:
    """The second image, for all three tools at once (a user's ``kubectl set image``)."""
    apps = k8s.AppsV1Api(env.api)
    image = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": IMAGES[1]}
    ]
    json_patch = {"_content_type": "application/json-patch+json"}
    k8s.CustomObjectsApi(env.api).patch_namespaced_custom_object(
        "argoproj.io", "v1alpha1", namespace, "rollouts", "argo", image, **json_patch
    )
    apps.patch_namespaced_deployment("flagger", namespace, image, **json_patch)
    apps.patch_namespaced_deployment("rollguard", namespace, image, **json_patch)


def _watch_rollguard(
    env: Environment, case: Case, namespace: str, seconds: float
) -> subprocess.Popen[bytes]:
    policy = manifests.rollguard_policy(
        namespace, namespace, env.prometheus_url, env.cluster.kubeconfig, case.scale
    )
    directory = env.directory / namespace
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "policy.yaml"
    path.write_text(json.dumps(policy))
    with (directory / "watch.log").open("wb") as log:
        return subprocess.Popen(
            [*env.rollguard_cmd, "watch", "--policy", str(path), "--for", f"{seconds:.3f}s",
             "-o", "json"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=directory,
        )  # fmt: skip


def watch_seconds(case: Case) -> float:
    """How long (unscaled) the run watches after the release: the longest canary, or the
    cap after the onset."""
    longest = max(case.config.argo_canary_seconds(), case.config.flagger_canary_seconds())
    if case.cap is not None:
        longest = min(longest, case.scenario.onset_seconds + case.cap)
    return longest


def run_case(env: Environment, case: Case, index: int) -> dict[str, Outcome]:
    """Run ``case``; each tool's outcome."""
    namespace = f"{PREFIX}{index}-{case.seed}"
    k8s.CoreV1Api(env.api).create_namespace({"metadata": {"name": namespace}})
    watch = _Watch(namespace)
    env.poller.subscribe(watch)
    seconds = watch_seconds(case)
    # Enough draws for the whole run and its grace, so every series keeps flowing.
    scenario = Scenario(**{**case.scenario.__dict__, "seconds": seconds + GRACE * case.scale + 60})
    run = Run(namespace, play(scenario, case.seed), case.scale)
    env.feed.add(run)
    process: subprocess.Popen[bytes] | None = None
    try:
        wait_for_service_account(env.cluster, env.api, namespace)
        _create(
            env, namespace, manifests.argo(namespace, env.prometheus_url, case.config, case.scale)
        )
        _create(
            env,
            namespace,
            manifests.flagger(namespace, env.prometheus_url, case.config, case.scale),
        )
        _create(
            env,
            namespace,
            [manifests.deployment("rollguard", IMAGES[0]), manifests.canary_ingress()],
        )
        watch.wait(_settled, SETTLE_TIMEOUT, "Rollout Healthy, Canary Initialized, Deployment up")
        run.start = time.monotonic()
        _release(env, namespace)
        process = _watch_rollguard(env, case, namespace, seconds / case.scale)
        onset = run.start + case.scenario.onset_seconds / case.scale
        deadline = run.start + seconds / case.scale + GRACE
        while time.monotonic() < deadline and not _all_done(watch, process):
            env.check_running()
            watch.seen.clear()
            watch.seen.wait(timeout=1.0)  # the next snapshot
        code = process.wait(timeout=max(1.0, deadline - time.monotonic() + 120))
        # The last snapshot after rollguard exited must include what it did.
        watch.seen.clear()
        watch.seen.wait(timeout=5)
        return _outcomes(watch, onset, case.scale, code)
    finally:
        if process is not None and process.poll() is None:
            terminate(process)
        env.poller.unsubscribe(watch)
        env.feed.remove(namespace)
        k8s.CoreV1Api(env.api).delete_namespace(namespace)


def _all_done(watch: _Watch, process: subprocess.Popen[bytes]) -> bool:
    def done(tool: str) -> bool:
        return (tool, "recovered") in watch.first or (tool, "promoted") in watch.first

    peers = done(ARGO) and done(FLAGGER)
    return peers and process.poll() is not None


def _outcomes(watch: _Watch, onset: float, scale: float, code: int) -> dict[str, Outcome]:
    def since(tool: str, what: str) -> float | None:
        at = watch.first.get((tool, what))
        return None if at is None else (at - onset) * scale

    found = {}
    for tool in TOOLS:
        outcome = Outcome(
            tool,
            decided=since(tool, "decided"),
            recovered=since(tool, "recovered"),
            promoted=(tool, "promoted") in watch.first,
        )
        if tool == ROLLGUARD:
            outcome.promoted = code == 0 and outcome.decided is None
            if code not in (0, 1):
                outcome.note = f"rollguard watch exited {code}"
        found[tool] = outcome
    return found


def never(value: float | None) -> float:
    return math.inf if value is None else value
