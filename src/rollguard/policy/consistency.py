"""Whole-policy checks: what no single section can know is wrong on its own.

Each section's model checks its own fields; the checks here span sections (a
trigger against the metrics source, the baseline, the executor, the promotion)
and run once the whole :class:`~rollguard.policy.model.Policy` is built, in the
order :func:`check` gives. Each raises a :class:`FieldError` at the field to
change, so the loader reports it at that field's line; the one problem with no
field to point at (no trigger at all) is a plain ``ValueError``.

The sections are told apart by their ``type``/``provider`` tags rather than by
class, so this module needs the model's classes for typing only and the model
can call it without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollguard.policy import secrets, sources
from rollguard.policy import triggers as trig
from rollguard.policy.actions import Action
from rollguard.policy.promotion import PROMOTION_SIGNALS
from rollguard.policy.triggers import FieldError, Trigger
from rollguard.signals import Signal

if TYPE_CHECKING:
    from rollguard.policy.model import Policy, TriggerBlock

#: Where a source that runs its own language takes a trigger's own query instead.
_QUERY_INSTEAD = dict.fromkeys(
    ("influxdb", "graphite", "loki", "cloudwatch", "datadog", "newrelic", "web", "command"),
    "; define the query as a signal under metrics.signals and give its name as signal:",
)


def check(policy: Policy) -> None:
    """Every whole-policy check, in order; the first problem found is raised."""
    commands_get_no_secrets(policy)
    triggers_can_run(policy)
    promotion_can_run(policy)
    isolation_can_run(policy)


def signal_problem(
    signal: Signal | str, spec: trig.MetricTriggerSpec, metrics: object
) -> str | None:
    """Why a trigger's signal or threshold cannot work with ``metrics``, else None."""
    if isinstance(signal, Signal):
        problem = trig.threshold_problem(signal, spec)
        return None if problem is None else f"threshold: {problem}"
    defined = sources.custom_signals(metrics)
    if signal in defined:
        return None
    known = ", ".join(sorted(defined)) or "none"
    return (
        f"signal: unknown signal {signal!r}; built-in: {signal_names()}; "
        f"defined under metrics.signals: {known}"
    )


def signal_names() -> str:
    """The built-in signals, as a policy writes them."""
    return ", ".join(signal.value for signal in Signal)


def commands_get_no_secrets(policy: Policy) -> None:
    """A command's ``pass_env`` never names a variable the policy holds a secret in."""
    passed: list[tuple[tuple[str, ...], list[str]]] = []
    if policy.target.executor.type == "command":
        passed.append((("target", "executor"), policy.target.executor.pass_env))
    if policy.metrics.provider == "command":
        passed.append((("metrics",), policy.metrics.pass_env))
    held = secrets.secret_env_names(policy) if passed else {}
    for where, names in passed:
        for index, name in enumerate(names):
            if name in held:
                raise FieldError(
                    (*where, "pass_env", index),
                    f"{name} holds a secret ({held[name]}); commands never get rollguard's secrets",
                )


def triggers_can_run(policy: Policy) -> None:
    """Each trigger is named once, can act, finds its reference, and asks the metrics
    source only what it can answer."""
    for name, spec in policy.triggers.items():
        if spec.signal is None:
            raise FieldError(
                ("triggers", name, "signal"),
                f"trigger {name!r} needs a signal (one of {signal_names()})",
            )
    _some_trigger_can_act(policy)
    names = [rule.name for rule in policy.rules]
    for name in sorted({n for n in names if names.count(n) > 1}):
        # the engine keeps each trigger's counters by name: two would share them
        raise FieldError(
            ("triggers", name),
            f"two triggers are named {name!r}; rename the one under triggers:",
        )
    for rule in policy.rules:
        where = _where(policy, rule)
        if policy.reference_for(rule) == "baseline" and policy.baseline.file is None:
            raise FieldError(
                (*where, _threshold_key(policy, rule)),
                f"trigger {rule.name!r} compares with the baseline, "
                "but baseline.file is not set (set it, or baseline.compare_with: stable)",
            )
        if rule.detection.method != "threshold":
            _sequential_can_run(policy, rule)
        if rule.query is not None and policy.metrics.provider != "prometheus":
            raise FieldError(
                (*where, "query"),
                f"trigger {rule.name!r} gives a PromQL query, "
                "which only the prometheus provider runs"
                + _QUERY_INSTEAD.get(policy.metrics.provider, ""),
            )
        if isinstance(policy.metrics, sources.QuerySource):
            missing = sources.unanswered(policy.metrics, rule.signal)
            if missing is not None:
                raise FieldError(
                    (*where, "signal"),
                    f"trigger {rule.name!r} measures {rule.signal.value}, which the "
                    f"{policy.metrics.provider} source cannot answer: {missing}",
                )


def promotion_can_run(policy: Policy) -> None:
    """A promotion needs a signal to show the canary no worse, and a way to move traffic."""
    if policy.promotion is None:
        return
    tested = [rule.name for rule in policy.rules if rule.signal in PROMOTION_SIGNALS]
    if not tested:
        raise FieldError(
            ("promotion",),
            "needs an error_rate_trigger or a latency trigger (latency_p95_ms): "
            "without one, nothing can show the canary is no worse than stable",
        )
    for rule in policy.rules:
        source = policy.reference_for(rule) or policy.baseline.compare_with
        if rule.signal in PROMOTION_SIGNALS and source == "baseline" and not policy.baseline.file:
            raise FieldError(
                ("promotion",),
                f"judges {rule.name!r} against the baseline, but baseline.file "
                "is not set (set it, or baseline.compare_with: stable)",
            )
    executor = policy.target.executor
    if executor.type == "command" and executor.set_weight is None:
        raise FieldError(
            ("promotion",),
            "steps the canary's share with target.executor.set_weight, which is not set",
        )
    if (
        executor.type == "kubernetes"
        and executor.router is None
        and executor.stable_by_replicas is None
    ):
        raise FieldError(
            ("promotion",),
            "steps the canary's share through a traffic router, or without "
            "one through the replica counts of two Deployments behind one Service; "
            "set target.executor.router (gateway-httproute, istio-virtualservice, "
            "nginx-ingress) or target.executor.stable_deployment (the Deployment "
            "running the stable version, not the canary's)",
        )


def isolation_can_run(policy: Policy) -> None:
    """A Kubernetes executor isolates only through a router: without one, every
    isolation the policy asks for would fail at the moment of an incident."""
    executor = policy.target.executor
    if executor.type != "kubernetes" or executor.router is not None:
        return
    for where, spec in _acting_blocks(policy):
        if spec.action is Action.TRAFFIC_ISOLATION_AND_ROLLBACK:
            default = "" if "action" in spec.model_fields_set else " (its default action)"
            raise FieldError(
                (*where, "action"),
                f"{'.'.join(where)} acts with traffic_isolation_and_rollback{default}, "
                "which the kubernetes executor can only do through a traffic router: "
                "set target.executor.router (gateway-httproute, istio-virtualservice or "
                "nginx-ingress), or choose another action (e.g. immediate_rollback)",
            )


def _some_trigger_can_act(policy: Policy) -> None:
    """A policy that can never act would watch as healthy without judging anything."""
    acting = [rule.name for rule in policy.rules if not rule.dry_run]
    gate = policy.security_trigger
    if gate is not None and not gate.dry_run:
        acting.append("security_trigger")
    if acting:
        return
    if policy.rules or gate is not None:
        first = next(where for where, spec in _blocks(policy) if spec.dry_run)
        raise FieldError(
            (*first, "dry_run"),
            "every trigger is dry_run: at least one must be able to act "
            "(set dry_run: false on one)",
        )
    # nothing in the file to point at: the loader reports it at the top
    raise ValueError(
        "no trigger: add at least one (error_rate_trigger, latency_trigger, "
        "memory_trigger, security_trigger, runtime_security or triggers:)"
    )


def _sequential_can_run(policy: Policy, rule: Trigger) -> None:
    detection = (*_where(policy, rule), "detection")
    if not trig.supports_sequential(rule.signal):
        names = ", ".join(sorted(signal.value for signal in trig.SEQUENTIAL_SIGNALS))
        raise FieldError(
            (*detection, "method"),
            f"trigger {rule.name!r}: sequential detection exists for {names} and custom "
            f"ratio signals (errors over requests), not {rule.signal.value} "
            "(use method: threshold)",
        )
    if rule.query is not None:
        raise FieldError(
            (*_where(policy, rule), "query"),
            f"trigger {rule.name!r}: sequential detection counts requests itself "
            "and cannot use a custom query",
        )
    reference = policy.reference_for(rule) or policy.baseline.compare_with
    if reference == "baseline" and policy.baseline.file is None:
        raise FieldError(
            detection,
            f"trigger {rule.name!r}: sequential detection compares with the baseline, "
            "but baseline.file is not set (set it, or baseline.compare_with: stable)",
        )


def _blocks(policy: Policy) -> list[tuple[tuple[str, ...], TriggerBlock]]:
    """Each trigger block the policy writes, with its path in the file."""
    blocks: list[tuple[tuple[str, ...], TriggerBlock | None]] = [
        ((name,), getattr(policy, name))
        for name in (*trig.DEFAULT_SIGNAL, "security_trigger", "runtime_security")
    ]
    blocks += [(("triggers", name), spec) for name, spec in policy.triggers.items()]
    return [(where, spec) for where, spec in blocks if spec is not None]


def _acting_blocks(policy: Policy) -> list[tuple[tuple[str, ...], TriggerBlock]]:
    """Each trigger block that may act (not dry_run), with its path in the file."""
    return [(where, spec) for where, spec in _blocks(policy) if not spec.dry_run]


def _where(policy: Policy, rule: Trigger) -> tuple[str, ...]:
    """The path in the file of the block ``rule`` comes from."""
    if rule.name in trig.DEFAULT_SIGNAL:
        return (rule.name,)
    if rule.name in policy.triggers:
        return ("triggers", rule.name)
    return tuple(rule.name.split("."))  # runtime_security.<its rule>


def _threshold_key(policy: Policy, rule: Trigger) -> str:
    """The key that makes ``rule`` relative: its compare_with, else its threshold."""
    where = _where(policy, rule)
    spec = policy.triggers[where[1]] if where[0] == "triggers" else getattr(policy, where[0])
    if not isinstance(spec, trig.MetricTriggerSpec) or spec.compare_with is not None:
        return "compare_with"
    given = ("threshold", "threshold_percent", "increase_percent", "increase", "above")
    return next((key for key in given if getattr(spec, key) is not None), "threshold")
