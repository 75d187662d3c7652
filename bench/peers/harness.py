"""One run: the three tools on one scenario at once, timed from the API server.

A run gets a namespace of its own holding Argo Rollouts' ``Rollout`` ``argo``,
Flagger's ``Canary`` over Deployment ``flagger``, and the Deployment
``rollguard`` that ``rollguard watch`` guards. Each starts at the first image
and settles (Rollout Healthy, Canary Initialized, Deployment rolled out). Then
``rollguard watch`` starts and, once it has made its first evaluation (the
peers' controllers are already running too, so no tool's start-up is counted
in its time to decision), at one moment the run's series start playing and all
three get the second image. From then on the poller's snapshots say when each
tool decided, when its traffic and when its release were back on stable
(``bench.peers.observe``); at the end of the watched time, a watch still running
is stopped with SIGINT.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client as k8s

from bench.detection.simulate import Scenario
from bench.peers import manifests
from bench.peers.feed import Feed, Run, play
from bench.peers.manifests import ARGO, FLAGGER, IMAGES, ROLLGUARD, TOOLS, Config
from bench.peers.observe import PREFIX, STATES, Objects, Poller, Snapshot, State
from servers.kube_cluster import KubeCluster, wait_for_service_account
from servers.process import terminate

#: Settling a run's objects before the release (wall seconds; a loaded machine is slow).
SETTLE_TIMEOUT = 180.0
#: After the last tool's watch ends: time for a decision already made to show.
GRACE = 30.0
#: For ``rollguard watch`` to start and make its first evaluation (wall seconds).
READY_TIMEOUT = 120.0
#: rollguard's exit code when stopped by SIGINT (errors.ExitCode.INTERRUPTED).
INTERRUPTED = 130


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
    recovered: float | None = None  # traffic and release back on stable
    #: The canary took no traffic any more (before ``recovered``: the release is undone
    #: after; None in runs recorded before this was measured).
    drained: float | None = None
    promoted: bool = False
    note: str = ""
    #: rollguard only, from its JSON lines: evaluations, those where a sequential trigger
    #: was judged by its threshold rule (too few samples), and the deciding evidence's method.
    evaluations: int = 0
    fallbacks: int = 0
    method: str = ""
    #: The promotion row (bench/peers/stepping.py): when it had all the traffic on the new
    #: version, and the canary requests it served up to traffic back on stable (or to the
    #: end of the run, when it never was).
    promoted_at: float | None = None
    exposed: float | None = None


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
class Watch:
    """The snapshots one run has seen: first time each tool's state turned true."""

    namespace: str
    first: dict[tuple[str, str], float] = field(default_factory=dict)
    objects: Objects = field(default_factory=dict)
    seen: threading.Event = field(default_factory=threading.Event)
    states: Mapping[str, Callable[[Objects], State]] = field(default_factory=lambda: STATES)
    #: Told every snapshot's time and this run's objects (the promotion row's shares).
    listen: Callable[[float, Objects], None] | None = None

    def __call__(self, snapshot: Snapshot) -> None:
        self.objects = snapshot.namespaces.get(self.namespace, {})
        if self.listen is not None:
            self.listen(snapshot.at, self.objects)
        for tool, state_of in self.states.items():
            state = state_of(self.objects)
            for what in ("decided", "drained", "recovered", "promoted"):
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


def create(env: Environment, namespace: str, objects: list[dict[str, object]]) -> None:
    stream = "\n".join(json.dumps(o) for o in objects)
    env.cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=stream)


def release(env: Environment, namespace: str, rollguard: str = "rollguard") -> None:
    """The second image, for all three tools at once (a user's ``kubectl set image``);
    rollguard's on its Deployment ``rollguard``."""
    apps = k8s.AppsV1Api(env.api)
    image = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": IMAGES[1]}
    ]
    json_patch = {"_content_type": "application/json-patch+json"}
    k8s.CustomObjectsApi(env.api).patch_namespaced_custom_object(
        "argoproj.io", "v1alpha1", namespace, "rollouts", "argo", image, **json_patch
    )
    apps.patch_namespaced_deployment("flagger", namespace, image, **json_patch)
    apps.patch_namespaced_deployment(rollguard, namespace, image, **json_patch)


PolicyOf = Callable[[str, str, str, Path, float], dict[str, object]]


def watch_rollguard(
    env: Environment,
    case: Case,
    namespace: str,
    seconds: float,
    *,
    run: str | None = None,
    policy_of: PolicyOf = manifests.rollguard_policy,
) -> tuple[subprocess.Popen[bytes], Path]:
    """``rollguard watch`` on ``policy_of``'s policy, reading series ``run`` (the namespace's
    by default)."""
    policy = policy_of(
        run or namespace, namespace, env.prometheus_url, env.cluster.kubeconfig, case.scale
    )
    directory = env.directory / namespace
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "policy.yaml"
    path.write_text(json.dumps(policy))
    log_path = directory / "watch.log"
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [*env.rollguard_cmd, "watch", "--policy", str(path), "--for", f"{seconds:.3f}s",
             "-o", "json"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=directory,
        ), log_path  # fmt: skip


def _first_evaluation(process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Wait until the watch has printed its first evaluation (it is up and measuring)."""
    deadline = time.monotonic() + timeout
    while b'"type":"evaluation"' not in log.read_bytes():
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"rollguard watch exited {process.returncode}: {tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"rollguard watch: no evaluation within {timeout:.0f}s")
        time.sleep(0.1)


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
    watch = Watch(namespace)
    env.poller.subscribe(watch)
    seconds = watch_seconds(case)
    # Enough draws for the whole run and its grace, so every series keeps flowing.
    scenario = Scenario(**{**case.scenario.__dict__, "seconds": seconds + GRACE * case.scale + 60})
    run = Run(namespace, play(scenario, case.seed), case.scale)
    env.feed.add(run)
    process: subprocess.Popen[bytes] | None = None
    try:
        wait_for_service_account(env.cluster, env.api, namespace)
        create(
            env, namespace, manifests.argo(namespace, env.prometheus_url, case.config, case.scale)
        )
        create(
            env,
            namespace,
            manifests.flagger(namespace, env.prometheus_url, case.config, case.scale),
        )
        create(
            env,
            namespace,
            [manifests.deployment("rollguard", IMAGES[0]), manifests.canary_ingress()],
        )
        watch.wait(_settled, SETTLE_TIMEOUT, "Rollout Healthy, Canary Initialized, Deployment up")
        # Like the peers' controllers, rollguard is up before the release.
        process, log = watch_rollguard(env, case, namespace, READY_TIMEOUT + seconds / case.scale)
        _first_evaluation(process, log, READY_TIMEOUT)
        run.start = time.monotonic()
        release(env, namespace)
        onset = run.start + case.scenario.onset_seconds / case.scale
        stopped, code = follow(env, watch, process, run.start + seconds / case.scale)
        found = outcomes_of(watch, onset, case.scale, INTERRUPTED if stopped else code, code)
        read_watch(log, found[ROLLGUARD])
        return found
    finally:
        if process is not None and process.poll() is None:
            terminate(process)
        env.poller.unsubscribe(watch)
        env.feed.remove(namespace)
        k8s.CoreV1Api(env.api).delete_namespace(namespace)


def follow(
    env: Environment, watch: Watch, process: subprocess.Popen[bytes], watched: float
) -> tuple[bool, int]:
    """Until every tool is done or the watched time (monotonic) and its grace are over;
    whether rollguard had to be stopped, and its exit code."""
    deadline = watched + GRACE
    stopped = False
    while time.monotonic() < deadline and not _all_done(watch, process):
        env.check_running()
        if not stopped and time.monotonic() >= watched and process.poll() is None:
            process.send_signal(signal.SIGINT)  # its watched time is over
            stopped = True
        watch.seen.clear()
        watch.seen.wait(timeout=1.0)  # the next snapshot
    if not stopped and process.poll() is None:
        process.send_signal(signal.SIGINT)
        stopped = True
    code = process.wait(timeout=120)
    # The last snapshot after rollguard exited must include what it did.
    watch.seen.clear()
    watch.seen.wait(timeout=5)
    return stopped, code


def read_watch(log: Path, outcome: Outcome) -> None:
    """What rollguard's JSON lines say about how it judged (``outcome``'s last fields)."""
    for line in log.read_text(errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict) or item.get("type") != "evaluation":
            continue
        outcome.evaluations += 1
        evidence = [t.get("evidence") or {} for t in item.get("triggers", [])]
        outcome.fallbacks += any(e.get("fallback") for e in evidence)
        decision = item.get("decision") or {}
        if decision.get("verdict") == "act" and not outcome.method:
            deciding = (decision.get("evidence") or [{}])[0]
            fallback = " (fallback)" if deciding.get("fallback") else ""
            outcome.method = f"{deciding.get('method', '?')}{fallback}"


def _all_done(watch: Watch, process: subprocess.Popen[bytes]) -> bool:
    def done(tool: str) -> bool:
        return (tool, "recovered") in watch.first or (tool, "promoted") in watch.first

    peers = done(ARGO) and done(FLAGGER)
    return peers and process.poll() is not None


def outcomes_of(
    watch: Watch, onset: float, scale: float, expected: int, code: int, *, stepped: bool = False
) -> dict[str, Outcome]:
    """Each tool's outcome; rollguard's exit ``code`` (``expected`` 130 if the harness
    stopped it at the end of its watched time, else 0 or 1). ``stepped``: rollguard
    promotes too, and the API server says when (the promotion row)."""

    def since(tool: str, what: str) -> float | None:
        at = watch.first.get((tool, what))
        return None if at is None else (at - onset) * scale

    found = {}
    for tool in TOOLS:
        outcome = Outcome(
            tool,
            decided=since(tool, "decided"),
            recovered=since(tool, "recovered"),
            drained=since(tool, "drained"),
            promoted=(tool, "promoted") in watch.first,
            promoted_at=since(tool, "promoted"),
        )
        if tool == ROLLGUARD and stepped:
            if code not in (0, 1, 4, INTERRUPTED):  # 4: held at max_step_duration
                outcome.note = f"rollguard watch exited {code}"
            elif code == 4:
                outcome.note = "held at max_step_duration"
        elif tool == ROLLGUARD:
            # healthy: its watch ended healthy, or was still watching at the end
            healthy = code == 0 or (expected == INTERRUPTED and code == INTERRUPTED)
            outcome.promoted = healthy and outcome.decided is None
            if code not in (0, 1, INTERRUPTED):
                outcome.note = f"rollguard watch exited {code}"
        found[tool] = outcome
    return found


def never(value: float | None) -> float:
    return math.inf if value is None else value
