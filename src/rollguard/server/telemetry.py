"""rollguard's own metrics, on a registry the caller passes in.

As prometheus_client's own code does, the registry is injected, so tests
(and several servers in one process) never share global state. Names are in
:mod:`rollguard.generate.own_metrics`, which the generated alerts and
dashboards query.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rollguard.engine.evaluate import Evaluation
from rollguard.generate import own_metrics as names
from rollguard.server.exposition import Exposition

_EVALUATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Telemetry:
    """Counters, gauges and a histogram describing what ``serve`` does."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.evaluations = Counter(
            names.EVALUATIONS.removesuffix("_total"),
            "Evaluations of a deployment's triggers.",
            ["deployment"],
            registry=registry,
        )
        self.decisions = Counter(
            names.DECISIONS.removesuffix("_total"),
            "Decisions per evaluation, by action and the trigger that won.",
            ["deployment", "action", "trigger"],
            registry=registry,
        )
        self.rollbacks = Counter(
            names.ROLLBACKS.removesuffix("_total"),
            "Rollbacks carried out (immediate, gradual, scaling, isolation, or an abort).",
            ["deployment", "action", "trigger"],
            registry=registry,
        )
        self.evaluation_seconds = Histogram(
            names.EVALUATION_SECONDS,
            "Seconds one evaluation took: measuring and deciding.",
            buckets=_EVALUATION_BUCKETS,
            registry=registry,
        )
        self.signal_value = Gauge(
            names.SIGNAL_VALUE,
            "The last measured value (canary) or reference (baseline or stable) of a signal.",
            ["deployment", "signal", "version"],
            registry=registry,
        )
        self.trigger_limit = Gauge(
            names.TRIGGER_LIMIT,
            "The limit a trigger compared the canary with at the last evaluation.",
            ["deployment", "trigger"],
            registry=registry,
        )
        self.canary_weight = Gauge(
            names.CANARY_WEIGHT,
            "Percent of traffic on the canary, as the executor reports it.",
            ["deployment"],
            registry=registry,
        )
        self.unauthorized = Counter(
            names.UNAUTHORIZED.removesuffix("_total"),
            "Requests to the control API without a valid bearer token.",
            ["command"],
            registry=registry,
        )
        self.policy_errors = Gauge(
            names.POLICY_ERRORS,
            "1 for each policy file in the watched folder that failed to load.",
            ["file"],
            registry=registry,
        )
        self._exposition = Exposition(registry)

    def render(self) -> bytes:
        """``/metrics``: what ``generate_latest(registry)`` gives, in a fraction of its time."""
        return self._exposition.render()

    def observe(self, deployment: str, evaluation: Evaluation, seconds: float | None) -> None:
        """Count one evaluation and remember its signal values."""
        self.evaluations.labels(deployment).inc()
        decision = evaluation.decision
        self.decisions.labels(deployment, decision.action.value, decision.trigger or "").inc()
        if seconds is not None:
            self.evaluation_seconds.observe(seconds)
        for result in evaluation.results:
            evidence = result.evidence
            if evidence.value is not None:
                self.signal_value.labels(deployment, evidence.signal, "canary").set(evidence.value)
            if evidence.reference is not None and evidence.reference_source:
                self.signal_value.labels(
                    deployment, evidence.signal, evidence.reference_source
                ).set(evidence.reference)
            if evidence.limit is not None:
                self.trigger_limit.labels(deployment, result.trigger).set(evidence.limit)

    def rolled_back(self, deployment: str, action: str, trigger: str | None) -> None:
        """Count a rollback that was carried out."""
        self.rollbacks.labels(deployment, action, trigger or "").inc()

    def weight(self, deployment: str, percent: int | None) -> None:
        """Record the canary's traffic weight."""
        if percent is not None:
            self.canary_weight.labels(deployment).set(percent)

    def forget(self, deployment: str) -> None:
        """Drop a deployment's gauges once it is no longer watched (counters stay)."""
        for gauge in (self.signal_value, self.trigger_limit, self.canary_weight):
            for labels in list(_label_sets(gauge)):
                if labels and labels[0] == deployment:
                    gauge.remove(*labels)

    def policy_failed(self, file: str, failed: bool) -> None:
        """Mark a policy file as broken (1) or clear it."""
        if failed:
            self.policy_errors.labels(file).set(1)
        else:
            with contextlib.suppress(KeyError):
                self.policy_errors.remove(file)


def _label_sets(gauge: Gauge) -> list[tuple[str, ...]]:
    """The label values a gauge has children for (prometheus_client keeps them privately)."""
    metrics = getattr(gauge, "_metrics", {})
    return list(metrics.keys())
