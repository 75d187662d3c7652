"""Each trigger of a policy said in one plain sentence."""

from __future__ import annotations

from collections.abc import Mapping

from rollguard.policy import sources
from rollguard.policy.model import Policy
from rollguard.policy.triggers import Trigger, supports_sequential
from rollguard.policy.units import Comparison
from rollguard.signals import AnySignal, CustomSignal, Signal, is_error_ratio
from rollguard.wording import counted

_WHAT = {
    Signal.ERROR_RATE_PERCENT: ("the canary's error rate (5xx responses / all responses)", "%"),
    Signal.LATENCY_P95_MS: ("the canary's 95th-percentile latency", " ms"),
    Signal.LATENCY_P50_MS: ("the canary's median latency", " ms"),
    Signal.LATENCY_MEAN_MS: ("the canary's mean latency", " ms"),
    Signal.MEMORY_MB: ("the canary's resident memory", " MB"),
    Signal.CPU_PERCENT: ("the canary's CPU use", "%"),
    Signal.CONNECTIONS: ("the canary's active connections", ""),
    Signal.UNAUTHORIZED_PER_MINUTE: ("unauthorized (401/403) responses per minute", ""),
    Signal.SUSPICIOUS_EVENTS: ("requests matching attack signatures", ""),
}


def _what(signal: AnySignal) -> tuple[str, str]:
    """What a signal measures on the canary, in words, and the unit its numbers carry."""
    if isinstance(signal, CustomSignal):
        unit = f"{signal.unit}" if signal.unit == "%" else f" {signal.unit}".rstrip()
        return f"the canary's {signal.name.replace('_', ' ')}", unit
    return _WHAT.get(signal, (signal.value.replace("_", " "), ""))


def detection_methods(signal: AnySignal) -> tuple[str, ...]:
    """The detection methods a trigger on ``signal`` can use (docs/detection.md)."""
    if supports_sequential(signal):
        return ("threshold", "sequential", "both")
    return ("threshold",)


def custom_signals(policy: Policy) -> list[str]:
    """One sentence per signal the policy defines: its kind, unit and detection methods."""
    lines = []
    for signal in sources.custom_signals(policy.metrics).values():
        kind = (
            "a ratio of two counts, 100 x errors / requests"
            if signal.kind == "ratio"
            else "a gauge, one query's value"
        )
        unit = f" in {signal.unit}" if signal.unit else ""
        methods = detection_methods(signal)
        how = (
            "thresholds and the sequential error-rate test (detection.method: "
            f"{', '.join(methods[1:])})"
            if len(methods) > 1
            else "thresholds only (a sequential test needs errors and requests counts)"
        )
        lines.append(f"signal {signal.name}: {kind}{unit}; judged by {how}.")
    return lines


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute" + ("s" if minutes != 1 else "")
    return f"{seconds:g} second" + ("s" if seconds != 1 else "")


def explain_trigger(policy: Policy, rule: Trigger, fallback: str = "") -> str:
    """One sentence: what is measured, over what window, compared with what, what happens.

    ``fallback`` says why a sequential trigger's test cannot be fed, when that is
    known before the start: its threshold rule judges instead.
    """
    what, unit = _what(rule.signal)
    limit = rule.threshold.value
    reference = policy.reference_for(rule)
    against = "the baseline file" if reference == "baseline" else "the stable version"
    if rule.threshold.comparison is Comparison.ABOVE:
        condition = f"goes above {limit:g}{unit}"
    elif rule.threshold.comparison is Comparison.INCREASE_PERCENT:
        condition = f"rises more than {limit:g}% above {against}"
    else:
        condition = f"rises more than {limit:g}{unit} above {against}"
    persistence = rule.persistence or policy.analysis.persistence
    told = f", and tells {rule.notification}" if rule.notification else ""
    dry = " (dry run: recorded, never acted on)" if rule.dry_run else ""
    when = (
        f"when {what}, measured over {_duration(rule.window_seconds)}, "
        f"{condition} for {counted(persistence, 'evaluation')} in a row"
    )
    if fallback:
        when = f"{when} (its threshold rule: the sequential test cannot be fed, {fallback})"
    elif rule.detection.method == "sequential":
        test = _sequential(policy, rule, what, reference or policy.baseline.compare_with)
        when = f"{test}; where the data cannot feed the test, {when}"
    elif rule.detection.method == "both":
        test = _sequential(policy, rule, what, reference or policy.baseline.compare_with)
        when = f"{when}, or {test}"
    action = f"{rule.action.value} ({rule.severity.value})"
    return f"{rule.name}: {when}, rollguard runs {action}{told}{dry}."


def _sequential(policy: Policy, rule: Trigger, what: str, reference: str) -> str:
    """The sequential test in words (docs/detection.md)."""
    detection = rule.detection
    count = sum(1 for r in policy.rules if r.detection.method != "threshold")
    against = "the baseline file" if reference == "baseline" else "the stable version"
    ratio, points = detection.tolerance_ratio, detection.tolerance_points
    if is_error_ratio(rule.signal):
        claim = f"{what} is above {ratio:g} x {against}'s + {points:g} points"
    elif reference == "stable":
        claim = (
            f"the canary's requests are slower than {against}'s (at some histogram bucket, "
            f"a share above {ratio:g} x the stable's + {points:g} points)"
        )
    else:  # the engine tests the buckets at the baseline's p95 (and p50)
        claim = (
            f"the canary's requests are slower than {against}'s (above the bucket at its "
            f"p95, a share above {ratio:g} x 5% + {points:g} points)"
        )
    onset = ""
    if detection.detector == "e-detector":
        horizon = detection.horizon_updates(policy.analysis.interval) or 1
        onset = (
            " (an e-detector: its evidence restarts at every interval, so a fault that begins "
            f"up to {_duration(horizon * policy.analysis.interval)} in need not first win "
            "back the healthy minutes)"
        )
    return (
        f"as soon as a sequential test, updated every {_duration(policy.analysis.interval)}, "
        f"shows that {claim}{onset}, with a false-rollback chance of at most "
        f"{detection.alpha / count:.2g} however long it watches"
    )


def explain(policy: Policy, fallbacks: Mapping[str, str] | None = None) -> list[str]:
    """Sentences for every trigger, the deploy gate included.

    ``fallbacks`` names the sequential triggers whose test the policy's data
    cannot feed, with why (:func:`rollguard.engine.sequential_rules.fallbacks`).
    """
    known = fallbacks or {}
    lines = [explain_trigger(policy, rule, known.get(rule.name, "")) for rule in policy.rules]
    gate = policy.security_trigger
    if gate is not None:
        limits = [f"more than {gate.critical_vulnerabilities} critical"]
        if gate.high_vulnerabilities is not None:
            limits.append(f"more than {gate.high_vulnerabilities} high")
        told = f", and tells {gate.notification}" if gate.notification else ""
        lines.append(
            "security_trigger: before a deploy, when the scanner reports (Trivy, Grype, SARIF) "
            f"show {' or '.join(limits)} vulnerabilities, rollguard runs "
            f"{gate.action.value} (critical){told}."
        )
    if policy.promotion is not None:
        lines.append(explain_promotion(policy))
    return lines


def explain_promotion(policy: Policy) -> str:
    """The promotion plan in one sentence (docs/promotion.md)."""
    plan = policy.promotion
    assert plan is not None  # noqa: S101 callers check
    steps = " -> ".join(f"{step}%" for step in plan.steps)
    timeout = {
        "hold": "holds the release for an operator",
        "promote": "moves on anyway",
        "rollback": "rolls back",
    }[plan.on_max_duration]
    hooks = [name for name in type(plan.hooks).model_fields if getattr(plan.hooks, name)]
    called = f"; hooks: {', '.join(hooks)}" if hooks else ""
    looser = (
        ""
        if plan.step_beta is None
        else f"; a step before the last moves on at a chance of at most {plan.step_beta:g}, "
        "the last only once the evidence since every step began shows it"
    )
    return (
        f"promotion: the canary's share goes {steps}; each step moves on once a sequential "
        f"test shows the canary no worse than {plan.margin_ratio:g} x its reference + "
        f"{plan.margin_points:g} points on every error-rate and latency trigger's signal "
        f"(a bad release is promoted with a chance of at most {plan.beta:g}{looser}) and "
        f"{_duration(plan.min_step_duration)} have passed; a step still short of that "
        f"after {_duration(plan.max_step_duration)} {timeout}{called}."
    )
