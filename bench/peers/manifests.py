"""What each tool is given for one run: the objects a user would write, at one time scale.

Every setting a user chooses is taken from the tool's own documentation of the
release built by tools/peers (paths below are inside its Go module):

Argo Rollouts v1.10.1
  - steps ``setWeight`` 20/40/60/80 with ``pause: {duration: 10m}`` and a background
    ``analysis``: docs/features/analysis.md, "Background Analysis" (the example's
    ``startingStep: 2`` is left out, so the analysis watches from the first step);
  - ``interval: 5m``, ``successCondition: result[0] >= 0.95``, ``failureLimit: 3`` and
    the query ``sum(irate(...non-5xx...[5m])) / sum(irate(...[5m]))``: the same example
    (docs/analysis/prometheus.md gives the same template);
  - latency: Argo documents no latency condition beyond a range-query example
    (``all(result, # < 1000)``, docs/analysis/prometheus.md), so its latency metric
    checks the same p99 <= 500 ms as Flagger's documented ``request-duration``, with
    the same interval and ``failureLimit`` as the success rate.

Flagger v1.44.0 with ``-mesh-provider=kubernetes``
  - docs/gitbook/tutorials/kubernetes-blue-green.md (the tutorial for that provider):
    ``interval: 30s``, ``threshold: 2``, ``iterations: 10``,
    ``progressDeadlineSeconds: 60``; ``request-success-rate`` ``min: 99`` over ``1m``
    and ``request-duration`` (p99, ms) ``max: 500`` over ``30s``;
  - the two checks as ``MetricTemplate``s of the Prometheus provider, the queries of
    docs/gitbook/usage/metrics.md ("Custom metrics", "Prometheus") on this exporter's
    series, ``{{ interval }}`` as the window, named ``success-rate`` and
    ``duration-p99``: the names ``request-success-rate`` and ``request-duration``
    select Flagger's built-in queries whatever ``templateRef`` says
    (pkg/controller/scheduler_metrics.go), which for this provider read pod-labelled
    series (pkg/metrics/observers/http.go) and find none here;
  - with the kubernetes provider, ``stepWeight``/``maxWeight`` are not supported: the
    controller says "Progressive traffic is not supported when using the kubernetes
    provider" and runs ``iterations`` (pkg/controller/scheduler.go).

rollguard: examples/sequential-policy.yaml, every window scaled like the peers', but
evaluated every two scrapes (10 s unscaled) rather than the example's 5 s: at one
scrape its sequential test finds fewer than two samples in its range and falls back
to the threshold rules (``watch`` warns so), with the Kubernetes executor
(its ``nginx-ingress`` router on a canary Ingress at 20%: the latency trigger's
gradual rollback needs a router; an Ingress needs no CRD) and this run's
Prometheus selectors.

Scaling: every duration a tool is given is divided by the common factor ``scale``;
Flagger clamps any analysis interval under 10 s to 10 s
(``GetAnalysisInterval``, pkg/apis/flagger/v1beta1/canary.go), which bounds it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bench.detection.simulate import SCRAPE_SECONDS

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "sequential-policy.yaml"
#: Flagger's floor for an analysis interval (canary.go, GetAnalysisInterval).
FLAGGER_MIN_INTERVAL = 10.0
IMAGES = ("app:v1", "app:v2")
ARGO, FLAGGER, ROLLGUARD = "Argo Rollouts", "Flagger", "rollguard"
TOOLS = (ARGO, FLAGGER, ROLLGUARD)


@dataclass(frozen=True)
class Config:
    """One row's settings, in unscaled seconds."""

    name: str
    argo_interval: float = 300.0
    argo_failure_limit: int = 3
    argo_pause: float = 600.0
    argo_success_floor: float = 0.95
    flagger_interval: float = 30.0
    flagger_threshold: int = 2
    flagger_iterations: int = 10
    flagger_success_window: float = 60.0
    flagger_duration_window: float = 30.0
    flagger_success_min: float = 99.0
    #: Above 0: a weighted canary (``provider: nginx``) stepping by this to ``flagger_max_weight``
    #: instead of ``iterations`` (bench/peers/stepping.py).
    flagger_step_weight: int = 0
    flagger_max_weight: int = 50
    #: Each tool steps its own share and the series follow it (bench/peers/stepping.py).
    promotion: bool = False

    def argo_canary_seconds(self) -> float:
        """How long a healthy Argo canary lasts: its four pauses."""
        return 4 * self.argo_pause

    def flagger_canary_seconds(self) -> float:
        if self.flagger_step_weight:
            # every step, then its promotion and finalising (an interval or two each)
            steps = -(-self.flagger_max_weight // self.flagger_step_weight)
            return self.flagger_interval * (steps + 3)
        return self.flagger_interval * (self.flagger_iterations + 1)


#: The documented examples above.
DOCS = Config("documented")
#: The shortest interval each peer allows: Flagger's 10 s floor (Argo documents none,
#: so the same 10 s), every other setting as documented.
TUNED = Config(
    "tuned",
    argo_interval=10.0,
    flagger_interval=10.0,
    flagger_success_window=10.0,
    flagger_duration_window=10.0,
)


def duration(seconds: float, scale: float) -> str:
    """``seconds / scale`` as a Go and PromQL duration (whole milliseconds)."""
    ms = round(seconds * 1000 / scale)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def scrape_milliseconds(scale: float) -> int:
    """Prometheus' scrape interval at ``scale``: one 5 s draw (whole milliseconds)."""
    return round(SCRAPE_SECONDS * 1000 / scale)


def selector(run: str, version: str) -> str:
    return f'run="{run}",version="{version}"'


def _pod_template(app: str, image: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "containers": [
                {"name": "app", "image": image, "ports": [{"name": "http", "containerPort": 9898}]}
            ]
        },
    }


def deployment(app: str, image: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": _pod_template(app, image),
        },
    }


def success_rate_query(run: str, window: str, rate: str = "rate") -> str:
    canary = selector(run, "canary")
    return (
        f'sum({rate}(http_requests_total{{{canary},code!~"5.*"}}[{window}])) / '
        f"sum({rate}(http_requests_total{{{canary}}}[{window}]))"
    )


def p99_seconds_query(run: str, window: str) -> str:
    canary = selector(run, "canary")
    return (
        "histogram_quantile(0.99, sum by (le) "
        f"(rate(http_request_duration_seconds_bucket{{{canary}}}[{window}])))"
    )


def argo(run: str, prometheus: str, config: Config, scale: float) -> list[dict[str, Any]]:
    """The AnalysisTemplate and the Rollout (at the first image)."""
    interval = duration(config.argo_interval, scale)
    window = duration(300.0, scale)  # the documented query's [5m]
    provider = {"address": prometheus}
    metrics = [
        {
            "name": "success-rate",
            "interval": interval,
            "successCondition": f"result[0] >= {config.argo_success_floor:g}",
            "failureLimit": config.argo_failure_limit,
            "provider": {
                "prometheus": {**provider, "query": success_rate_query(run, window, "irate")}
            },
        },
        {
            "name": "latency-p99",
            "interval": interval,
            "successCondition": "result[0] <= 0.5",
            "failureLimit": config.argo_failure_limit,
            "provider": {"prometheus": {**provider, "query": p99_seconds_query(run, interval)}},
        },
    ]
    template = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "checks"},
        "spec": {"metrics": metrics},
    }
    pause = {"pause": {"duration": duration(config.argo_pause, scale)}}
    steps: list[dict[str, Any]] = []
    for weight in (20, 40, 60, 80):
        steps += [{"setWeight": weight}, copy.deepcopy(pause)]
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "argo"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "argo"}},
            "template": _pod_template("argo", IMAGES[0]),
            "strategy": {
                "canary": {"analysis": {"templates": [{"templateName": "checks"}]}, "steps": steps}
            },
        },
    }
    return [template, rollout]


def flagger(run: str, prometheus: str, config: Config, scale: float) -> list[dict[str, Any]]:
    """Two MetricTemplates, the target Deployment (first image) and its Canary."""
    canary = selector(run, "canary")
    templates = [
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": name},
            "spec": {"provider": {"type": "prometheus", "address": prometheus}, "query": query},
        }
        for name, query in (
            ("success-rate", success_rate_query(run, "{{ interval }}") + " * 100"),
            (
                "duration-p99",
                "histogram_quantile(0.99, sum by (le) (rate("
                f"http_request_duration_seconds_bucket{{{canary}}}[{{{{ interval }}}}]))) * 1000",
            ),
        )
    ]
    analysis = {
        "interval": duration(config.flagger_interval, scale),
        "threshold": config.flagger_threshold,
        "iterations": config.flagger_iterations,
        "metrics": [
            {
                "name": "success-rate",
                "templateRef": {"name": "success-rate"},
                "thresholdRange": {"min": config.flagger_success_min},
                "interval": duration(config.flagger_success_window, scale),
            },
            {
                "name": "duration-p99",
                "templateRef": {"name": "duration-p99"},
                "thresholdRange": {"max": 500},
                "interval": duration(config.flagger_duration_window, scale),
            },
        ],
    }
    canary_object = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "flagger"},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "flagger"},
            "progressDeadlineSeconds": 60,
            "service": {"port": 9898, "portDiscovery": True},
            "analysis": analysis,
        },
    }
    return [*templates, deployment("flagger", IMAGES[0]), canary_object]


def rollguard_policy(
    run: str, namespace: str, prometheus: str, kubeconfig: Path, scale: float
) -> dict[str, Any]:
    """examples/sequential-policy.yaml with the Kubernetes executor, this run's selectors
    and every duration divided by ``scale``."""
    policy: dict[str, Any] = YAML(typ="safe").load(POLICY)
    policy["target"] = {
        "deployment": "rollguard",
        "executor": {
            "type": "kubernetes",
            "deployment": "rollguard",
            "namespace": namespace,
            "kubeconfig": str(kubeconfig),
            "rollout_timeout": "120s",
            "poll_interval": "0.2s",
            "router": {"kind": "nginx-ingress", "name": "rollguard-canary"},
        },
    }
    policy["rollback"] = {"step_wait": duration(60.0, scale)}  # the documented default
    policy["metrics"].update(
        address=prometheus,
        stable_selector=selector(run, "stable"),
        canary_selector=selector(run, "canary"),
    )
    # Two scrapes (of the scrape interval as Prometheus is given it, whole milliseconds):
    # its sequential test reads increase(...[interval]), which needs two samples in the
    # range; under two scrapes it falls back to the threshold rules, and says so.
    policy["analysis"]["interval"] = f"{2 * scrape_milliseconds(scale)}ms"
    for trigger, seconds in (
        ("error_rate_trigger", 300.0),
        ("latency_trigger", 180.0),
        ("memory_trigger", 120.0),
    ):
        policy[trigger]["measurement_window"] = duration(seconds, scale)
    return policy


CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def canary_ingress() -> dict[str, Any]:
    """The canary Ingress rollguard's router writes (ingress-nginx's canary annotations)."""
    backend = {"service": {"name": "rollguard-canary", "port": {"number": 9898}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "rollguard-canary",
            "annotations": {"nginx.ingress.kubernetes.io/canary": "true", CANARY_WEIGHT: "20"},
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }
