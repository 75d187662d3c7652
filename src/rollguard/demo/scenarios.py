"""What ``rollguard demo`` can break, and the policy it watches with.

The policy is examples/seed-policy.yaml's five trigger blocks, as written, with every
window divided by one time scale (30 by default: 5 minutes become 10 s) so a
demo ends within about a minute. The scaling is part of the result and is
printed: the demo never pretends a 10-second window is a 5-minute one.

One setting differs from that example on purpose, and says why: relative
triggers compare the canary with the stable version measured at the same time
(``baseline.compare_with: stable``), since a laptop has no load-test baseline.

The fault scenarios and ``promote`` add a ``promotion:`` section (its durations
scaled like the windows): the canary's share is stepped forward on evidence, so
a fault starts while the release is being promoted and the rollback still wins.
Its margin allows a few points of errors (``margin_points``), since a healthy
demo canary answers almost no errors and "no worse than 1.5 x zero" could
never be shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rollguard.policy.model import Policy

#: The windows of examples/seed-policy.yaml, in seconds, by trigger (the demo scales them).
FULL_SCALE_WINDOWS_SECONDS: dict[str, float] = {
    "error_rate_trigger": 300.0,
    "latency_trigger": 180.0,
    "memory_trigger": 120.0,
    "runtime_security": 60.0,
}
FULL_SCALE_STEP_WAIT_SECONDS = 60.0  # a gradual rollback's default wait per step
FULL_SCALE_WATCH_SECONDS = 600.0  # a post-deployment watch of 10 minutes
#: A progressive release's steps and the durations of docs/promotion.md, at full scale.
PROMOTION_STEPS = [20, 40, 70, 100]  # the first as the classic demo's canary share
#: A step lasts at least the error-rate trigger's window, so a fault that starts during
#: a step is judged before the next (docs/promotion.md's 30 s is shorter than that window).
MIN_STEP_TRIGGER = "error_rate_trigger"
#: Not scaled: the evidence comes from requests, and the time scale does not multiply them.
MAX_STEP_SECONDS = 60.0
#: "No worse" allows the error-rate trigger's own 5 points over 1.5 x stable's rate.
PROMOTION_MARGIN_POINTS = 5.0
EVALUATION_INTERVAL_SECONDS = 1.0
SCRAPE_INTERVAL_SECONDS = 1.0
#: A window must hold a few evaluations' scrapes for counters to have a rate.
MIN_WINDOW_SECONDS = 3.0


@dataclass(frozen=True)
class Scenario:
    """One thing that can go wrong with the canary (or nothing, for ``healthy``)."""

    name: str
    fault: str | None  # path under the canary's /simulate/
    trigger: str | None  # the trigger expected to fire
    description: str
    progressive: bool = True  # the canary is promoted step by step (promotion:)


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "error-rate",
            "error_rate/10",
            "error_rate_trigger",
            "10% of the canary's answers become HTTP 500",
        ),
        Scenario(
            "latency",
            "latency/1000",
            "latency_trigger",
            "the canary answers 1000 ms slower",
        ),
        Scenario(
            "memory",
            "memory/120",
            "memory_trigger",
            "the canary allocates and holds 120 MB",
        ),
        Scenario(
            "unauthorized",
            "unauthorized/60",
            "runtime_security.unauthorized_access_attempts",
            "the canary answers 60 requests a minute with 401/403",
        ),
        Scenario(
            "healthy",
            None,
            None,
            "no fault: the canary is as good as stable, left at its share",
            progressive=False,
        ),
        Scenario(
            "promote",
            None,
            None,
            "no fault: the canary is promoted step by step to 100% as the evidence allows",
        ),
    )
}


#: Why the real stack runs no promotion (docs/demo.md).
NO_PROMOTION_ON_REAL = (
    "the promotion test reads each 1 s interval's request counts, and Prometheus' "
    "increase() over a 1 s range has too few of its 1 s scrapes to give them"
)


def on_stack(scenario: Scenario, stack: str) -> Scenario:
    """The scenario as it runs on ``stack``: the real stack promotes nothing
    (:data:`NO_PROMOTION_ON_REAL`), so its fault scenarios run at a fixed 20 %."""
    if stack == "real" and scenario.progressive:
        return replace(scenario, progressive=False)
    return scenario


def scaled(seconds: float, time_scale: float) -> float:
    """A full-scale duration divided by the time scale, rounded to a tenth of a second."""
    return round(seconds / time_scale, 1)


def scaled_window(seconds: float, time_scale: float) -> float:
    """A scaled window, never shorter than :data:`MIN_WINDOW_SECONDS`."""
    return max(scaled(seconds, time_scale), MIN_WINDOW_SECONDS)


def scaling_lines(time_scale: float, *, progressive: bool = False) -> list[str]:
    """How every full-scale duration was scaled, one line each, for people to read."""
    lines = []
    for name, full in FULL_SCALE_WINDOWS_SECONDS.items():
        window = scaled_window(full, time_scale)
        floor = " (the minimum)" if window > scaled(full, time_scale) else ""
        lines.append(f"{name} window {full:g}s -> {window:g}s{floor}")
    step_wait = scaled(FULL_SCALE_STEP_WAIT_SECONDS, time_scale)
    watch = scaled(FULL_SCALE_WATCH_SECONDS, time_scale)
    lines.append(f"gradual rollback step wait {FULL_SCALE_STEP_WAIT_SECONDS:g}s -> {step_wait:g}s")
    lines.append(f"healthy watch {FULL_SCALE_WATCH_SECONDS:g}s -> {watch:g}s")
    if progressive:
        low = scaled_window(FULL_SCALE_WINDOWS_SECONDS[MIN_STEP_TRIGGER], time_scale)
        steps = " -> ".join(f"{step}%" for step in PROMOTION_STEPS)
        lines.append(
            f"promotion {steps}: each step at least {low:g}s ({MIN_STEP_TRIGGER}'s window), "
            f"at most {MAX_STEP_SECONDS:g}s (not scaled: evidence comes from requests, which "
            "the time scale does not multiply)"
        )
    lines.append(f"evaluation and scrape every {EVALUATION_INTERVAL_SECONDS:g}s (not scaled)")
    return lines


def promotion_section(time_scale: float) -> dict[str, Any]:
    """The demo's ``promotion:`` section, its durations scaled."""
    return {
        "steps": PROMOTION_STEPS,
        "min_step_duration": (
            f"{scaled_window(FULL_SCALE_WINDOWS_SECONDS[MIN_STEP_TRIGGER], time_scale):g}s"
        ),
        "max_step_duration": f"{MAX_STEP_SECONDS:g}s",
        "on_max_duration": "hold",
        "margin_points": PROMOTION_MARGIN_POINTS,
    }


def demo_policy_data(
    *,
    stable: str,
    canary: str,
    router: str,
    time_scale: float = 30.0,
    metrics: dict[str, Any] | None = None,
    executor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The demo policy as plain data (what ``examples/demo-policy.yaml`` spells out).

    ``metrics`` and ``executor`` replace the embedded scraper and local router
    sections, for the demo on real parts (:mod:`rollguard.demo.real_stack`).
    """

    def window(trigger: str) -> str:
        return f"{scaled_window(FULL_SCALE_WINDOWS_SECONDS[trigger], time_scale):g}s"

    routes = ["critical_alert", "warning_alert", "resource_alert", "security_alert"]
    scrape = {
        "provider": "scrape",
        "stable": f"{stable}/metrics",
        "canary": f"{canary}/metrics",
        "scrape_interval": f"{SCRAPE_INTERVAL_SECONDS:g}s",
    }
    return {
        "name": "rollguard-demo",
        "target": {
            "deployment": "demo-service",
            "executor": executor or {"type": "local", "router": router},
        },
        "metrics": metrics or scrape,
        "analysis": {
            "interval": f"{EVALUATION_INTERVAL_SECONDS:g}s",
            "min_requests": 20,
            "persistence": 2,
            "no_data_limit": 5,
        },
        "rollback": {
            "step_wait": f"{scaled(FULL_SCALE_STEP_WAIT_SECONDS, time_scale):g}s",
            "canary_weight": 20,
        },
        "baseline": {"compare_with": "stable"},
        "notifications": {
            "channels": {"log": {"type": "log"}},
            "routes": {route: ["log"] for route in [*routes, "security_incident"]},
        },
        "error_rate_trigger": {
            "threshold": "5%",
            "measurement_window": window("error_rate_trigger"),
            "action": "immediate_rollback",
            "notification": "critical_alert",
        },
        "latency_trigger": {
            "threshold": "30% increase from baseline",
            "measurement_window": window("latency_trigger"),
            "action": "gradual_rollback_with_traffic_shifting",
            "notification": "warning_alert",
        },
        "memory_trigger": {
            "threshold": "50MB increase from baseline",
            "measurement_window": window("memory_trigger"),
            "action": "scaling_and_rollback",
            "notification": "resource_alert",
        },
        "security_trigger": {
            "critical_vulnerabilities": "0 tolerance",
            "high_vulnerabilities": "10 maximum",
            "action": "immediate_deployment_block",
            "notification": "security_alert",
        },
        "runtime_security": {
            "unauthorized_access_attempts": "5 per minute",
            "suspicious_patterns": "immediate_detection",
            "measurement_window": window("runtime_security"),
            "action": "traffic_isolation_and_rollback",
            "notification": "security_incident",
        },
    }


def demo_policy(
    *,
    stable: str,
    canary: str,
    router: str,
    time_scale: float = 30.0,
    metrics: dict[str, Any] | None = None,
    executor: dict[str, Any] | None = None,
    progressive: bool = False,
) -> Policy:
    """The example policy's triggers with scaled windows, watching a local stable/canary pair;
    ``progressive`` adds the demo's ``promotion:`` section."""
    data = demo_policy_data(
        stable=stable,
        canary=canary,
        router=router,
        time_scale=time_scale,
        metrics=metrics,
        executor=executor,
    )
    if progressive:
        data["promotion"] = promotion_section(time_scale)
    return Policy.model_validate(data)
