"""The promotion row: each tool steps its canary's share up, and the series follow it.

The rows of ``bench.peers.suite`` hold the canary at 20% and ask who rolls back
a bad release first. Here each tool moves traffic itself, as its docs set it up
for progressive delivery, and the questions are how long a healthy release
takes to reach 100%, and how many canary requests a bad one serves before the
traffic is back on stable:

- Argo Rollouts: the documented row's ``Rollout`` unchanged (``setWeight``
  20/40/60/80, each ``pause: {duration: 10m}``, background analysis), which
  without a traffic router splits by replicas;
- Flagger: ``provider: nginx`` on the ``Canary`` (the controller stays
  ``-mesh-provider=kubernetes``; the Canary's provider overrides it) with the
  ``Canary Release`` analysis of docs/gitbook/usage/deployment-strategies.md:
  ``interval: 1m``, ``threshold: 10``, ``maxWeight: 50``, ``stepWeight: 2``
  ("will run for 25 minutes"); Flagger writes the weight on the canary
  ``Ingress`` it generates from the ``ingressRef`` (no ingress controller
  serves it here: the weight is read from the API server);
- rollguard: the documented row's policy with a ``promotion:`` section
  (docs/promotion.md: steps 5/10/25/50/100, ``min_step_duration`` 30 s,
  ``max_step_duration`` 10m then ``hold``, ``beta`` 0.01, ``step_beta`` 1,
  ``margin_ratio`` 2: the simulated benchmark's fast row), stepping through
  replica counts: a stable Deployment of 20 pods and a canary Deployment at 0
  (20 pods make 5% exact).

Each tool gets series of its own (``run`` label ``<namespace>-<tool>``): every
5 s draw splits one stream of 500 requests/s (100/s at the suite's 20% share)
by the share of the new version that tool had during the draw, read from the
API server (time-weighted over the draw). A tool's canary requests are thus
the users it exposed; counted up to the draw in which its traffic was back on
stable, they are its exposure.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.detection.simulate import (
    BASE_ERROR_RATE,
    BASE_MEMORY_MB,
    BOUNDS,
    MEMORY_NOISE_MB,
    SCRAPE_SECONDS,
    Scenario,
    cells,
    multinomial,
)
from bench.peers import manifests
from bench.peers.manifests import ARGO, CANARY_WEIGHT, DOCS, FLAGGER, IMAGES, ROLLGUARD, Config
from bench.peers.observe import Objects, State, argo_state

#: rollguard's pods: 20 make its first step, 5%, exact.
PODS = 20
#: rollguard's promotion section (unscaled; docs/promotion.md).
PROMOTION = {
    "steps": [5, 10, 25, 50, 100],
    "min_step_duration": 30.0,
    "max_step_duration": 600.0,
    "on_max_duration": "hold",
    "beta": 0.01,
    "step_beta": 1,
    "margin_ratio": 2,
}
_UPPER = np.asarray(BOUNDS, dtype=float)
_BOUNDS = len(_UPPER)
KEYS = {ARGO: "argo", FLAGGER: "flagger", ROLLGUARD: "rollguard"}

#: Argo as documented; Flagger's Canary Release analysis of deployment-strategies.md.
STEPPED = Config(
    "promotion",
    argo_interval=DOCS.argo_interval,
    argo_pause=DOCS.argo_pause,
    flagger_interval=60.0,
    flagger_threshold=10,
    flagger_step_weight=2,
    flagger_max_weight=50,
    promotion=True,
)


def series(namespace: str, tool: str) -> str:
    """The ``run`` label of one tool's series in one run."""
    return f"{namespace}-{KEYS[tool]}"


def flagger(run: str, prometheus: str, config: Config, scale: float) -> list[dict[str, Any]]:
    """The kubernetes-provider objects of ``manifests.flagger``, turned into a weighted
    canary: ``provider: nginx``, an ``ingressRef`` and ``stepWeight``/``maxWeight``."""
    objects = manifests.flagger(run, prometheus, config, scale)
    canary = objects[-1]
    spec = canary["spec"]
    spec["provider"] = "nginx"
    spec["ingressRef"] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "name": "flagger",
    }
    analysis = spec["analysis"]
    del analysis["iterations"]
    analysis.update(stepWeight=config.flagger_step_weight, maxWeight=config.flagger_max_weight)
    return [*objects[:-1], _ingress("flagger", "flagger", {}), canary]


def _ingress(name: str, service: str, annotations: dict[str, str]) -> dict[str, Any]:
    backend = {"service": {"name": service, "port": {"number": 9898}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "app.example.com", "http": {"paths": [path]}}],
        },
    }


def rollguard_objects() -> list[dict[str, Any]]:
    """The stable Deployment (all the pods) and the canary's, at 0 until the first step."""
    return [
        manifests.deployment("rollguard", IMAGES[0], replicas=PODS),
        manifests.deployment("rollguard-canary", IMAGES[0], replicas=0),
    ]


def rollguard_policy(
    run: str, namespace: str, prometheus: str, kubeconfig: Path, scale: float
) -> dict[str, Any]:
    """The documented row's policy stepping by replica counts, with ``PROMOTION``."""
    policy = manifests.rollguard_policy(run, namespace, prometheus, kubeconfig, scale)
    executor = policy["target"]["executor"]
    del executor["router"]
    executor.update(deployment="rollguard-canary", stable_deployment="rollguard")
    section = copy.deepcopy(PROMOTION)
    for key in ("min_step_duration", "max_step_duration"):
        section[key] = manifests.duration(float(section[key]), scale)  # type: ignore[arg-type]
    policy["promotion"] = section
    return policy


def _named(objects: Objects, kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objects.get(kind, []) if o["metadata"]["name"] == name), None)


def _status(item: dict[str, Any] | None, key: str) -> int:
    return int(((item or {}).get("status") or {}).get(key) or 0)


def _spec_replicas(item: dict[str, Any] | None) -> int:
    return int(((item or {}).get("spec") or {}).get("replicas") or 0)


def flagger_state(objects: Objects) -> State:
    """Flagger with a weighted canary: decided when Failed, traffic on stable when the
    canary Ingress's weight is 0, back on stable when the primary is all there too."""
    canary = _named(objects, "canaries", "flagger")
    if canary is None:
        return State()
    phase = (canary.get("status") or {}).get("phase")
    failed = phase == "Failed"
    drained = failed and _flagger_weight(objects) == 0
    primary = _named(objects, "deployments", "flagger-primary")
    ready = _status(primary, "availableReplicas") == _spec_replicas(primary) > 0
    return State(failed, drained, drained and ready, phase == "Succeeded")


def _flagger_weight(objects: Objects) -> int:
    ingress = _named(objects, "ingresses", "flagger-canary")
    if ingress is None:
        return 0
    return int(ingress["metadata"].get("annotations", {}).get(CANARY_WEIGHT) or 0)


def rollguard_state(objects: Objects) -> State:
    """rollguard by replica counts: decided when the canary is scaled back to 0 after its
    first step, traffic on stable when no canary pod is left, back on stable when stable
    has all its pods again; promoted when the canary has them all and stable none."""
    stable = _named(objects, "deployments", "rollguard")
    canary = _named(objects, "deployments", "rollguard-canary")
    if stable is None or canary is None:
        return State()
    stepped = canary["metadata"].get("generation", 1) > 2  # created, released, stepped
    decided = stepped and _spec_replicas(canary) == 0
    drained = decided and _status(canary, "replicas") == 0
    promoted = (
        _spec_replicas(canary) == PODS
        and _status(canary, "availableReplicas") == PODS
        and _spec_replicas(stable) == 0
        and _status(stable, "replicas") == 0
    )
    return State(
        decided, drained, drained and _status(stable, "availableReplicas") == PODS, promoted
    )


STATES = {ARGO: argo_state, FLAGGER: flagger_state, ROLLGUARD: rollguard_state}


def shares(objects: Objects) -> dict[str, float]:
    """Each tool's share of the traffic on the new version, 0 to 1, as its objects say."""
    found = {}
    pods = [rs for rs in objects.get("replicasets", []) if _app(rs) == "argo"]
    available = sum(_status(rs, "availableReplicas") for rs in pods)
    new = sum(_status(rs, "availableReplicas") for rs in pods if _image(rs) == IMAGES[1])
    found[ARGO] = new / available if available else 0.0
    canary = _named(objects, "canaries", "flagger")
    phase = ((canary or {}).get("status") or {}).get("phase")
    # Promoted: the primary runs the new version and takes the traffic back.
    found[FLAGGER] = 1.0 if phase in ("Finalising", "Succeeded") else _flagger_weight(objects) / 100
    stable = _status(_named(objects, "deployments", "rollguard"), "availableReplicas")
    on_canary = _status(_named(objects, "deployments", "rollguard-canary"), "availableReplicas")
    found[ROLLGUARD] = on_canary / (stable + on_canary) if stable + on_canary else 0.0
    return found


def _app(item: dict[str, Any]) -> str | None:
    labels: dict[str, str] = item["metadata"].get("labels", {})
    return labels.get("app")


def _image(replicaset: dict[str, Any]) -> str:
    return str(replicaset["spec"]["template"]["spec"]["containers"][0]["image"])


@dataclass
class SteppedRun:
    """One tool's series in one run: every draw split by the share that tool had.

    The share is a step function of wall time (``observe``, from each snapshot of
    the API server); draw ``j`` covers wall seconds ``start + j * 5 / scale`` to the
    next, and is drawn, once, when the exporter is first asked for it.
    """

    name: str
    scenario: Scenario
    scale: float
    seed: int
    start: float | None = None
    _shares: list[tuple[float, float]] = field(default_factory=list)
    _draws: list[tuple[float, ...]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self.rps = self.scenario.canary_rps / self.scenario.share

    def observe(self, at: float, share: float) -> None:
        """The tool's share from wall time ``at`` on (until the next observation)."""
        with self._lock:
            if not self._shares or self._shares[-1][1] != share:
                self._shares.append((at, share))

    def mean_share(self, begin: float, end: float) -> float:
        """The share over wall seconds ``begin`` to ``end``, weighted by time."""
        total = 0.0
        for index, (at, share) in enumerate(self._shares):
            until = self._shares[index + 1][0] if index + 1 < len(self._shares) else end
            total += share * max(0.0, min(until, end) - max(at, begin))
        return total / (end - begin)

    def draws(self, now: float) -> int:
        if self.start is None:
            return 0
        return max(0, int((now - self.start) * self.scale // SCRAPE_SECONDS))

    def _extend(self, count: int) -> None:
        if self.start is None or count <= len(self._draws):
            return  # before the release: the counters stand at zero
        wall = SCRAPE_SECONDS / self.scale
        while len(self._draws) < count:
            j = len(self._draws)
            share = self.mean_share(self.start + j * wall, self.start + (j + 1) * wall)
            self._draws.append(self._draw(j * SCRAPE_SECONDS, share))

    def _draw(self, seconds: float, share: float) -> tuple[float, ...]:
        """(canary requests, errors, stable requests, errors, canary memory) and the
        buckets after them: one 5 s draw at ``share``."""
        rng = self._rng
        n = rng.poisson(self.rps * SCRAPE_SECONDS * np.array([share, 1 - share]))
        bad = self.scenario.fault == "errors" and seconds >= self.scenario.onset_seconds
        canary_rate = self.scenario.error_rate if bad else BASE_ERROR_RATE
        errors = rng.binomial(n, [canary_rate, BASE_ERROR_RATE])
        buckets = multinomial(rng, n, np.repeat(cells(0.0), 2, axis=0))
        memory = BASE_MEMORY_MB + rng.normal(0, MEMORY_NOISE_MB)
        return (*n, *errors, memory, *buckets[0], *buckets[1])

    def values(self, version: str, now: float) -> tuple[float, float, np.ndarray, float, float]:
        """(requests, errors, cumulative buckets, duration sum, memory MB) at ``now``."""
        with self._lock:
            self._extend(self.draws(now))
            rows = np.array(self._draws) if self._draws else np.zeros((0, 5 + 2 * _BOUNDS))
        which = 0 if version == "canary" else 1
        requests = float(rows[:, which].sum())
        errors = float(rows[:, 2 + which].sum())
        first = 5 + which * _BOUNDS
        buckets = rows[:, first : first + _BOUNDS].sum(axis=0)
        memory = float(rows[-1, 4]) if len(rows) and version == "canary" else BASE_MEMORY_MB
        # The _sum as the suite's feed has it: each request at its bucket's upper bound.
        cells_ = np.diff(np.concatenate([[0.0], buckets]))
        seconds = float(cells_ @ _UPPER + (requests - buckets[-1]) * _UPPER[-1])
        return requests, errors, buckets, seconds, memory

    def canary_requests(self, until: float) -> float:
        """The canary's requests in the draws up to the one holding wall time ``until``."""
        if self.start is None:
            return 0.0
        wall = SCRAPE_SECONDS / self.scale
        count = max(0, int((until - self.start) // wall) + 1)
        with self._lock:
            self._extend(count)
            return float(sum(row[0] for row in self._draws[:count]))
