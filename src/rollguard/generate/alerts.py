"""Prometheus alerting rules generated from a policy, so alerts and rollguard agree.

Each trigger becomes one alert whose expression measures what the engine
measures over the trigger's window, compared with the same limit: a fixed
value, the baseline file's value, or the stable version measured side by side.
``for:`` mirrors the engine's persistence: a trigger fires after
``persistence`` breaching evaluations ``analysis.interval`` apart, so the
alert must hold for ``(persistence - 1) * interval``; the rule group is
evaluated at the policy's interval. rollguard's own health (no data,
controller down, a rollback carried out) is alerted on too. The expressions
are :mod:`rollguard.promql`'s, the very text the Prometheus provider runs to
decide, so an alert cannot disagree with rollguard about what was measured.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from rollguard.engine.evaluate import judged_on_requests
from rollguard.generate import own_metrics
from rollguard.generate.selectors import Selectors
from rollguard.generate.source import PolicySource
from rollguard.policy.model import Policy
from rollguard.policy.triggers import Trigger
from rollguard.policy.units import Comparison
from rollguard.promql import duration, series, source_metric
from rollguard.signals import AnySignal, CustomSignal, Signal, Version

_UNITS = {
    Signal.ERROR_RATE_PERCENT: "%",
    Signal.LATENCY_P95_MS: " ms",
    Signal.LATENCY_P50_MS: " ms",
    Signal.LATENCY_MEAN_MS: " ms",
    Signal.MEMORY_MB: " MB",
    Signal.CPU_PERCENT: "%",
    Signal.UNAUTHORIZED_PER_MINUTE: "/min",
}


def _unit(signal: AnySignal) -> str:
    """The unit after a number of ``signal`` (a custom signal's own)."""
    if isinstance(signal, CustomSignal):
        return signal.unit if signal.unit in ("", "%") else f" {signal.unit}"
    return _UNITS.get(signal, "")


@dataclass(frozen=True)
class AlertOptions:
    """Choices that are not in the policy: where runbooks live, rollguard's scrape job."""

    runbook_url: str | None = None
    rollguard_job: str = own_metrics.DEFAULT_JOB


def alert_name(trigger: str) -> str:
    """``error_rate_trigger`` → ``RollguardErrorRate``; dotted names are joined."""
    name = trigger.removeprefix("runtime_security.").removesuffix("_trigger")
    words = [word for word in name.replace(".", "_").split("_") if word]
    return "Rollguard" + "".join(word.capitalize() for word in words)


def _labels(policy: Policy, severity: str, **extra: str) -> dict[str, str]:
    labels = {
        "severity": severity,
        "deployment": policy.target.deployment,
        "rollguard_policy": policy.name,
    }
    labels.update(extra)
    return labels


def _runbook(options: AlertOptions, anchor: str, hint: str) -> dict[str, str]:
    notes = {"runbook": hint}
    if options.runbook_url:
        notes["runbook_url"] = f"{options.runbook_url.rstrip('#')}#{anchor}"
    return notes


def _condition(source: PolicySource, rule: Trigger, selectors: Selectors) -> tuple[str, str]:
    """The alert expression and a phrase saying what it is compared with."""
    measured = selectors.build(rule.signal, Version.CANARY, rule.window_seconds, rule.query)
    # A trigger's own PromQL may end in ``or``/``and``: keep it one operand of ``>``.
    canary = measured.value if rule.query is None else f"({measured.value})"
    threshold = rule.threshold
    unit = _unit(rule.signal)
    reference = source.policy.reference_for(rule)
    baseline_value = source.baseline_value(rule)
    if threshold.comparison is Comparison.ABOVE:
        condition, against = f"{canary} > {threshold.value:g}", f"above {threshold.value:g}{unit}"
    elif reference == "baseline" and baseline_value is not None:
        if threshold.comparison is Comparison.INCREASE_PERCENT:
            limit = baseline_value * (1 + threshold.value / 100)
            against = f"{threshold.value:g}% over the baseline's {baseline_value:g}{unit}"
        else:
            limit = baseline_value + threshold.value
            against = f"{threshold.value:g}{unit} over the baseline's {baseline_value:g}{unit}"
        condition = f"{canary} > {limit:g}"
    else:
        stable = selectors.expr(rule.signal, Version.STABLE, rule.window_seconds, rule.query)
        if threshold.comparison is Comparison.INCREASE_PERCENT:
            condition = f"{canary} > {1 + threshold.value / 100:g} * ({stable})"
            against = f"{threshold.value:g}% over the stable version"
        else:
            condition = f"{canary} > ({stable}) + {threshold.value:g}"
            against = f"{threshold.value:g}{unit} over the stable version"
        if reference == "baseline":
            against += f" (the baseline file has no {rule.signal.value})"
    min_requests = rule.min_requests
    if min_requests is None:
        min_requests = source.policy.analysis.min_requests
    if judged_on_requests(rule.signal) and measured.requests is not None and min_requests > 0:
        # The engine waits on the requests behind the value (a histogram's count for latency).
        condition = f"{condition} and {measured.requests} >= {min_requests}"
    return condition, against


def trigger_rule(source: PolicySource, rule: Trigger, options: AlertOptions) -> dict[str, Any]:
    """One alerting rule for one trigger."""
    policy = source.policy
    expr, against = _condition(source, rule, Selectors.for_policy(policy))
    persistence = rule.persistence or policy.analysis.persistence
    unit = _unit(rule.signal)
    out: dict[str, Any] = {"alert": alert_name(rule.name), "expr": expr}
    hold = (persistence - 1) * policy.analysis.interval
    if hold > 0:
        out["for"] = duration(hold)
    out["labels"] = _labels(
        policy, rule.severity.value, trigger=rule.name, action=rule.action.value
    )
    out["annotations"] = {
        "summary": f"{policy.target.deployment}: {rule.name} breached, "
        f"rollguard runs {rule.action.value}",
        "description": f"{rule.signal.value} of the canary over {duration(rule.window_seconds)} "
        f'is {{{{ $value | printf "%.2f" }}}}{unit}, {against}.',
        **_runbook(
            options,
            rule.name,
            f"rollguard acts on its own ({rule.action.value}); check "
            f"`GET /api/v1/deployments/{policy.target.deployment}` for the evidence.",
        ),
    }
    return out


def gate_rules(source: PolicySource, options: AlertOptions) -> list[dict[str, Any]]:
    """The deploy gate's vulnerability limits, when the policy has a security trigger."""
    gate = source.policy.security_trigger
    if gate is None:
        return []
    selectors = Selectors.for_policy(source.policy)
    limits = [(Signal.VULNERABILITIES_CRITICAL, gate.critical_vulnerabilities, "Critical")]
    if gate.high_vulnerabilities is not None:
        limits.append((Signal.VULNERABILITIES_HIGH, gate.high_vulnerabilities, "High"))
    rules = []
    for signal, limit, level in limits:
        expr = selectors.expr(signal, Version.CANARY, 300.0)  # a gauge: the window is unused
        rules.append(
            {
                "alert": f"Rollguard{level}Vulnerabilities",
                "expr": f"{expr} > {limit}",
                "labels": _labels(
                    source.policy, "critical", trigger="security_trigger", action=gate.action.value
                ),
                "annotations": {
                    "summary": f"{source.policy.target.deployment}: {level.lower()} "
                    "vulnerabilities over the gate's limit; deployments are blocked",
                    "description": f"{{{{ $value }}}} {level.lower()} findings, at most {limit} "
                    "allowed.",
                    **_runbook(
                        options, "security_trigger", "fix or ignore the findings, then re-run gate"
                    ),
                },
            }
        )
    return rules


def health_rules(source: PolicySource, options: AlertOptions) -> list[dict[str, Any]]:
    """rollguard's own health: source metrics gone, controller down, a rollback done."""
    policy = source.policy
    selectors = Selectors.for_policy(policy)
    interval = policy.analysis.interval
    windows: dict[tuple[str, Version], float] = {}
    for rule in policy.rules:
        signal = rule.signal
        if rule.query is not None or isinstance(signal, CustomSignal):
            continue  # a custom query's metric is unknown
        if signal is Signal.SUSPICIOUS_EVENTS:
            continue  # attack counters may rightly be absent
        versions = [Version.CANARY]
        if policy.reference_for(rule) == "stable" or (
            policy.reference_for(rule) == "baseline" and source.baseline_value(rule) is None
        ):
            versions.append(Version.STABLE)
        for version in versions:
            key = (source_metric(signal, selectors.names), version)
            windows[key] = max(windows.get(key, 0.0), rule.window_seconds)
    rules: list[dict[str, Any]] = []
    for (metric, version), window in sorted(windows.items()):
        hold = (policy.analysis.no_data_limit - 1) * interval
        selector = series(metric, selectors.of(version))
        absent: dict[str, Any] = {
            "alert": "RollguardNoData",
            "expr": f"absent_over_time({selector}[{duration(window)}])",
        }
        if hold > 0:
            absent["for"] = duration(hold)
        absent["labels"] = _labels(policy, "warning", metric=metric, side=version.value)
        absent["annotations"] = {
            "summary": f"{policy.target.deployment}: no samples of {metric} for the "
            f"{version.value} version",
            "description": f"rollguard cannot judge the {version.value} version without "
            f"{metric}; after {policy.analysis.no_data_limit} evaluations the outcome is "
            "inconclusive.",
            **_runbook(options, "no-data", "check the exporter, the scrape job and the selector"),
        }
        rules.append(absent)
    job = f'job="{options.rollguard_job}"'
    rules.append(
        {
            "alert": "RollguardControllerDown",
            "expr": f"up{{{job}}} == 0 or absent(up{{{job}}})",
            "for": duration(max(60.0, 3 * interval)),
            "labels": _labels(policy, "critical"),
            "annotations": {
                "summary": "rollguard is not running: deployments are not being watched",
                "description": f"Prometheus cannot scrape the {options.rollguard_job} job.",
                **_runbook(options, "controller-down", "restart `rollguard serve`, read its log"),
            },
        }
    )
    rolled_back = series(own_metrics.ROLLBACKS, f'deployment="{policy.target.deployment}"')
    rules.append(
        {
            "alert": "RollguardRolledBack",
            "expr": f"sum by (deployment, action) (increase({rolled_back}[15m])) > 0",
            "labels": _labels(policy, "info"),
            "annotations": {
                "summary": f"rollguard rolled {policy.target.deployment} back "
                "({{ $labels.action }})",
                "description": "See the decision's evidence in rollguard's API or audit trail.",
                **_runbook(options, "rolled-back", "read the evidence; fix before redeploying"),
            },
        }
    )
    return rules


def alert_groups(source: PolicySource, options: AlertOptions | None = None) -> dict[str, Any]:
    """The rule file's content for one policy: one group evaluated at the policy's interval."""
    options = options or AlertOptions()
    rules = [trigger_rule(source, rule, options) for rule in source.policy.rules]
    rules += gate_rules(source, options)
    rules += health_rules(source, options)
    group = {
        "name": f"rollguard.{source.policy.name}",
        "interval": duration(source.policy.analysis.interval),
        "rules": rules,
    }
    return {"groups": [group]}


def render(groups: dict[str, Any]) -> str:
    """YAML text for a rule file, keys in the order Prometheus documents them."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.width = 4096  # keep each expression on one line
    yaml.default_flow_style = False
    buffer = io.StringIO()
    buffer.write("# Generated by `rollguard generate alerts`; edit the policy, not this file.\n")
    yaml.dump(groups, buffer)
    return buffer.getvalue()
