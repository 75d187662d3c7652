"""Trigger blocks as users write them, and the normalized :class:`Trigger`.

The named blocks (``error_rate_trigger``, ``latency_trigger``,
``memory_trigger``, ``security_trigger``, ``runtime_security``) load as
written. Each metric block also takes a plain form: ``threshold_percent: 5``
instead of ``threshold: 5%``, ``window: 5m`` instead of
``measurement_window: 5 minutes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from rollguard.policy import units
from rollguard.policy.actions import (
    ACTION_PATTERN,
    DEFAULT_SEVERITY,
    Action,
    Severity,
    parse_action,
)
from rollguard.policy.envnames import env_name_problem
from rollguard.signals import AnySignal, CustomSignal, Signal, is_error_ratio


def _number_or_text(pattern: str, *examples: str, **number: float) -> WithJsonSchema:
    """The JSON schema of a field its parser reads from a number or a string."""
    return WithJsonSchema(
        {
            "anyOf": [{"type": "number", **number}, {"type": "string", "pattern": pattern}],
            "examples": list(examples),
        }
    )


# The JSON schemas say what the parsers read, so the Kubernetes schema generated from
# them (rollguard.operator.schema) refuses what loading a policy file refuses.
Seconds = Annotated[
    float,
    BeforeValidator(units.parse_duration),
    _number_or_text(units.DURATION_PATTERN, "5m", "5 minutes", "90s", exclusiveMinimum=0),
]
ActionName = Annotated[
    Action,
    BeforeValidator(parse_action),
    WithJsonSchema({"type": "string", "pattern": ACTION_PATTERN}),
]
Limit = Annotated[
    int,
    BeforeValidator(units.parse_limit),
    _number_or_text(units.LIMIT_PATTERN, "0 tolerance", "10 maximum", minimum=0),
]


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never silently disable a trigger.

    Nor may YAML's ``.inf`` / ``.nan``: an infinite tolerance or limit never fires,
    and a NaN one breaks the sequential tests' arithmetic.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class FieldError(ValueError):
    """A problem a model validator finds that belongs to one field: the loader reports it
    at that field's line. ``loc`` is the field's path below the model that raised it (from
    the file's top for the whole policy); a path that goes past what the file writes stops
    at the deepest key it does write (a missing ``baseline.file`` at ``baseline``)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Threshold(StrictModel):
    """A normalized threshold, in the unit of its signal."""

    value: float
    comparison: units.Comparison
    reference: Literal["baseline", "stable"] | None = None

    def limit(self, reference: float | None) -> float:
        """The value past which it is breached; a relative threshold without its
        reference value falls back to the bare number."""
        if self.comparison is units.Comparison.ABOVE or reference is None:
            return self.value
        if self.comparison is units.Comparison.INCREASE_PERCENT:
            return reference * (1 + self.value / 100)
        return reference + self.value


#: Signals with a sequential test (docs/detection.md): counts of errors, or of slow requests.
SEQUENTIAL_SIGNALS = frozenset(
    {
        Signal.ERROR_RATE_PERCENT,
        Signal.LATENCY_P95_MS,
        Signal.LATENCY_P50_MS,
        Signal.LATENCY_MEAN_MS,
    }
)


def supports_sequential(signal: AnySignal) -> bool:
    """Whether a sequential test exists for ``signal`` (a custom ratio counts as an error rate)."""
    if isinstance(signal, CustomSignal):
        return is_error_ratio(signal)
    return signal in SEQUENTIAL_SIGNALS


def _builtin_first(raw: object) -> object:
    """A built-in signal's name becomes the Signal; any other name is a custom signal's."""
    if isinstance(raw, str) and raw in Signal.__members__.values():
        return Signal(raw)
    return raw


#: A trigger's ``signal:``: a built-in one, or a name under ``metrics.signals``.
SignalRef = Annotated[Signal | str, BeforeValidator(_builtin_first)]


#: The e-detector's horizon unless the policy gives one, and the longest it may give.
DEFAULT_HORIZON_SECONDS = 3600.0
MAX_HORIZON_SECONDS = 86_400.0


class Detection(StrictModel):
    """How a trigger decides: fixed-window threshold, sequential test, or both.

    ``alpha`` bounds the chance of a false rollback over the whole watch; the
    policy's sequential triggers share it (each tests at alpha / their number).
    The test's null hypothesis is "canary <= tolerance_ratio x reference +
    tolerance_points" (error rate, or share of requests slower than a bucket).
    ``detector`` says how the test bets on when a fault began: ``e-detector`` (the
    default) evenly in log-time over ``horizon``, ``mixture`` mostly on the canary's
    start (docs/detection.md, "Mixing: unknown effect size, unknown start").
    """

    method: Literal["threshold", "sequential", "both"] = "threshold"
    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    tolerance_ratio: float = Field(default=1.2, ge=1.0)
    tolerance_points: float = Field(default=0.1, ge=0.0)
    detector: Literal["mixture", "e-detector"] = "e-detector"
    horizon: Seconds | None = Field(default=None, gt=0, le=MAX_HORIZON_SECONDS)

    @model_validator(mode="after")
    def _check_horizon(self) -> Detection:
        if self.horizon is not None and self.detector != "e-detector":
            raise FieldError(("horizon",), "horizon applies to detector: e-detector only")
        return self

    @property
    def detector_chosen(self) -> bool:
        """Whether the policy names the detector (or its horizon) rather than taking the
        default: a watch resumed across a change of the default keeps its stored one."""
        return bool({"detector", "horizon"} & self.model_fields_set)

    def horizon_updates(self, interval: float) -> int | None:
        """The e-detector's horizon in analysis intervals (None for the mixture)."""
        if self.detector != "e-detector":
            return None
        seconds = DEFAULT_HORIZON_SECONDS if self.horizon is None else self.horizon
        return max(1, math.ceil(seconds / interval - 1e-9))


class MetricTriggerSpec(StrictModel):
    """A threshold on a metric signal over a window, human form or plain form."""

    signal: SignalRef | None = None
    threshold: Annotated[
        Any,
        _number_or_text(
            units.THRESHOLD_PATTERN, "5%", "500ms", "30% increase from baseline", minimum=0
        ),
    ] = None
    threshold_percent: float | None = Field(default=None, ge=0)
    increase_percent: float | None = Field(default=None, ge=0)
    increase: float | None = Field(default=None, ge=0)
    above: float | None = Field(default=None, ge=0)
    compare_with: Literal["baseline", "stable"] | None = None
    measurement_window: Seconds | None = None
    window: Seconds | None = None
    action: ActionName = Action.IMMEDIATE_ROLLBACK
    notification: str | None = None
    severity: Severity | None = None
    dry_run: bool = False
    persistence: int | None = Field(default=None, ge=1)
    min_requests: int | None = Field(default=None, ge=0)
    query: str | None = None
    detection: Detection | None = None

    @field_validator("threshold")
    @classmethod
    def _readable_threshold(cls, raw: Any) -> Any:
        if raw is not None:
            units.parse_threshold(raw)
        return raw

    @model_validator(mode="after")
    def _one_threshold_and_one_window(self) -> MetricTriggerSpec:
        given = [
            name
            for name in ("threshold", "threshold_percent", "increase_percent", "increase", "above")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of threshold, threshold_percent, increase_percent, "
                f"increase, above (got {', '.join(given) or 'none'})"
            )
        if self.measurement_window is not None and self.window is not None:
            raise FieldError(("window",), "give measurement_window or window, not both")
        return self

    def threshold_unit(self) -> str:
        """The unit the threshold was written in: ``%``, ``ms``, ``MB`` or "" (a bare number)."""
        if self.threshold is not None:
            return units.parse_threshold(self.threshold).unit
        return "%" if self.threshold_percent is not None or self.increase_percent else ""

    def parsed_threshold(self) -> Threshold:
        """The threshold in normalized form."""
        if self.threshold is not None:
            parsed = units.parse_threshold(self.threshold)
            reference = self.compare_with or parsed.reference
            return Threshold(value=parsed.value, comparison=parsed.comparison, reference=reference)
        if self.increase_percent is not None:
            return Threshold(
                value=self.increase_percent,
                comparison=units.Comparison.INCREASE_PERCENT,
                reference=self.compare_with or "baseline",
            )
        if self.increase is not None:
            return Threshold(
                value=self.increase,
                comparison=units.Comparison.INCREASE,
                reference=self.compare_with or "baseline",
            )
        value = self.threshold_percent if self.threshold_percent is not None else self.above
        assert value is not None  # noqa: S101 guaranteed by the validator
        return Threshold(value=value, comparison=units.Comparison.ABOVE, reference=None)


#: The unit a signal's absolute thresholds are written in ("" where it has none).
_SIGNAL_UNIT: dict[Signal, str] = {
    Signal.ERROR_RATE_PERCENT: "%",
    Signal.CPU_PERCENT: "%",
    Signal.LATENCY_P95_MS: "ms",
    Signal.LATENCY_P50_MS: "ms",
    Signal.LATENCY_MEAN_MS: "ms",
    Signal.MEMORY_MB: "MB",
}
#: Signals that cannot pass 100: a share of requests. (CPU can: 200% is two cores.)
_AT_MOST_100 = frozenset({Signal.ERROR_RATE_PERCENT})
#: Signals no trigger can judge on its own (the engine reads them for others).
_NOT_JUDGED = frozenset({Signal.LATENCY_BUCKETS})


def threshold_problem(signal: Signal, spec: MetricTriggerSpec) -> str | None:
    """Why ``spec``'s threshold can never make sense for ``signal``, else None.

    A threshold in another signal's unit (``500ms`` on an error rate) or beyond
    what the signal can reach (``200%`` of requests failing) is a typo that
    would silently keep a trigger from ever firing.
    """
    if signal in _NOT_JUDGED:
        return f"{signal.value} cannot be a trigger's signal (the engine reads it for latency)"
    threshold = spec.parsed_threshold()
    unit = spec.threshold_unit()
    expected = _SIGNAL_UNIT.get(signal, "")
    relative_percent = threshold.comparison is units.Comparison.INCREASE_PERCENT
    if unit and unit != expected and not relative_percent:
        shown = f"in {expected}" if expected else "as a bare number"
        return (
            f"{signal.value} is measured {shown}, but the threshold is in {unit} "
            f"(e.g. {_example(signal)})"
        )
    if signal in _AT_MOST_100 and not relative_percent and threshold.value >= 100:
        if threshold.comparison is units.Comparison.INCREASE:
            what = f"an increase of {threshold.value:g} percentage points"
        else:
            what = f"above {threshold.value:g}%"
        return (
            f"{what} can never be reached: {signal.value} is a share of requests, "
            "0-100% (give a threshold below 100%)"
        )
    return None


def _example(signal: Signal) -> str:
    unit = _SIGNAL_UNIT.get(signal, "")
    return {"%": "'5%'", "ms": "'500ms'", "MB": "'50MB increase from baseline'"}.get(unit, "'10'")


class SecurityTriggerSpec(StrictModel):
    """``security_trigger``: vulnerability limits for the deploy gate."""

    critical_vulnerabilities: Limit = 0
    high_vulnerabilities: Limit | None = None
    medium_vulnerabilities: Limit | None = None
    low_vulnerabilities: Limit | None = None
    ignore_file: str | None = None
    action: ActionName = Action.DEPLOYMENT_BLOCK
    notification: str | None = "security_alert"
    dry_run: bool = False


#: Falco's priorities, most severe first (its ``falco_common::priority_type``).
FALCO_PRIORITIES = (
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
)
#: The short spellings Falco's own configuration and outputs also use.
FALCO_PRIORITY_ALIASES = {
    "info": "informational",
    "warn": "warning",
    "crit": "critical",
    "err": "error",
}


#: The names :func:`falco_priority` reads, as a schema pattern.
FALCO_PRIORITY_PATTERN = (
    r"(?i)^\s*(" + "|".join([*FALCO_PRIORITIES, *FALCO_PRIORITY_ALIASES]) + r")\s*$"
)


def falco_priority(raw: object) -> str:
    """A Falco priority's name as Falco lists it; any case, short spellings too."""
    word = str(raw).strip().lower()
    word = FALCO_PRIORITY_ALIASES.get(word, word)
    if word not in FALCO_PRIORITIES:
        raise ValueError(f"expected a Falco priority ({', '.join(FALCO_PRIORITIES)}), got {raw!r}")
    return word


def _host_port(raw: object) -> str:
    """``127.0.0.1:2801`` (where rollguard receives Falco's http_output)."""
    host, _, port = str(raw).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port such as 127.0.0.1:2801, got {raw!r}")
    return str(raw)


def _secret_env_name(name: str) -> str:
    """A variable's name, never the secret pasted in its place (as every ``*_env`` field)."""
    problem = env_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


class RuntimeSecuritySpec(StrictModel):
    """``runtime_security``: unauthorized attempts and attack patterns."""

    unauthorized_access_attempts: (
        Annotated[
            float,
            BeforeValidator(units.parse_rate_per_minute),
            _number_or_text(units.RATE_PATTERN, "5 per minute", minimum=0),
        ]
        | None
    ) = None
    suspicious_patterns: Literal["immediate_detection", "disabled"] = "disabled"
    measurement_window: Seconds = 60.0
    access_log: str | None = None
    access_log_format: Literal["combined", "haproxy"] = "combined"
    falco_min_priority: Annotated[
        str,
        BeforeValidator(falco_priority),
        WithJsonSchema({"type": "string", "pattern": FALCO_PRIORITY_PATTERN}),
    ] = "warning"
    falco_listen: (
        Annotated[
            str,
            BeforeValidator(_host_port),
            WithJsonSchema({"type": "string", "pattern": r"^.+:[0-9]{1,5}$"}),
        ]
        | None
    ) = None
    #: The environment variable holding the secret every Falco post must carry.
    falco_secret_env: Annotated[str, AfterValidator(_secret_env_name)] | None = None
    action: ActionName = Action.TRAFFIC_ISOLATION_AND_ROLLBACK
    notification: str | None = "security_incident"
    dry_run: bool = False

    @model_validator(mode="after")
    def _falco_needs_a_secret(self) -> RuntimeSecuritySpec:
        if self.falco_listen and not self.falco_secret_env:
            raise FieldError(
                ("falco_listen",),
                "falco_listen needs falco_secret_env: the name of an environment variable "
                "holding the secret Falco must send (any local process could otherwise "
                "forge an alert); see docs/runtime-security.md",
            )
        return self


class Trigger(StrictModel):
    """One normalized rule the engine evaluates."""

    name: str
    signal: Signal | CustomSignal
    threshold: Threshold
    window_seconds: float
    action: Action
    severity: Severity
    notification: str | None = None
    dry_run: bool = False
    persistence: int | None = None
    min_requests: int | None = None
    query: str | None = None
    detection: Detection = Detection()


#: Which signal each named block measures when it does not say.
DEFAULT_SIGNAL: dict[str, Signal] = {
    "error_rate_trigger": Signal.ERROR_RATE_PERCENT,
    "latency_trigger": Signal.LATENCY_P95_MS,
    "memory_trigger": Signal.MEMORY_MB,
    "cpu_trigger": Signal.CPU_PERCENT,
    "connections_trigger": Signal.CONNECTIONS,
}

DEFAULT_NOTIFICATION: dict[Action, str] = {
    Action.IMMEDIATE_ROLLBACK: "critical_alert",
    Action.GRADUAL_ROLLBACK: "warning_alert",
    Action.SCALING_AND_ROLLBACK: "resource_alert",
    Action.TRAFFIC_ISOLATION_AND_ROLLBACK: "security_incident",
    Action.DEPLOYMENT_BLOCK: "security_alert",
}


def from_metric_spec(
    name: str, spec: MetricTriggerSpec, custom: Mapping[str, CustomSignal] | None = None
) -> Trigger:
    """Normalize a metric block; ``name`` picks the default signal for named blocks, and
    ``custom`` holds the signals the policy defines (``metrics.signals``)."""
    chosen = spec.signal or DEFAULT_SIGNAL.get(name)
    signal: Signal | CustomSignal | None = (
        chosen if chosen is None or isinstance(chosen, Signal) else (custom or {}).get(chosen)
    )
    if signal is None:  # checked by the policy validator; kept for type narrowing
        raise ValueError(f"trigger {name!r} needs a known signal")
    window = spec.measurement_window or spec.window or 60.0
    return Trigger(
        name=name,
        signal=signal,
        threshold=spec.parsed_threshold(),
        window_seconds=window,
        action=spec.action,
        severity=spec.severity or DEFAULT_SEVERITY[spec.action],
        notification=spec.notification or DEFAULT_NOTIFICATION.get(spec.action),
        dry_run=spec.dry_run,
        persistence=spec.persistence,
        min_requests=spec.min_requests,
        query=spec.query,
        detection=spec.detection or Detection(),
    )


def from_runtime_security(spec: RuntimeSecuritySpec) -> list[Trigger]:
    """The two metric rules hidden in ``runtime_security``."""
    common: dict[str, Any] = {
        "window_seconds": spec.measurement_window,
        "action": spec.action,
        "severity": DEFAULT_SEVERITY[spec.action],
        "notification": spec.notification,
        "dry_run": spec.dry_run,
    }
    rules = []
    if spec.unauthorized_access_attempts is not None:
        rules.append(
            Trigger(
                name="runtime_security.unauthorized_access_attempts",
                signal=Signal.UNAUTHORIZED_PER_MINUTE,
                threshold=Threshold(
                    value=spec.unauthorized_access_attempts, comparison=units.Comparison.ABOVE
                ),
                min_requests=0,
                **common,
            )
        )
    if spec.suspicious_patterns == "immediate_detection":
        rules.append(
            Trigger(
                name="runtime_security.suspicious_patterns",
                signal=Signal.SUSPICIOUS_EVENTS,
                threshold=Threshold(value=0, comparison=units.Comparison.ABOVE),
                persistence=1,
                min_requests=0,
                **common,
            )
        )
    return rules
