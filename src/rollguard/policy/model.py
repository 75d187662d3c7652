"""The policy file (``rollguard.yaml``): the one source of truth.

Every section is a strict pydantic model: unknown keys, unknown provider,
executor or channel types are validation errors, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from functools import cached_property
from typing import Annotated, Literal

from pydantic import (
    Field,
    HttpUrl,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from rollguard.policy import consistency, sources
from rollguard.policy import triggers as trig
from rollguard.policy.actions import Action
from rollguard.policy.envnames import EnvName, env_name_problem, key_env_problem
from rollguard.policy.promotion import Promotion
from rollguard.policy.triggers import FieldError, Seconds, StrictModel, Trigger

#: Kubernetes' name grammar for Deployments (a DNS-1123 subdomain): lower-case letters,
#: digits, ``-`` and ``.``, at most 253 characters. Every target uses it, so a name is safe
#: in a command line, a file name, a URL and a label selector alike.
DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
#: A namespace is a DNS-1123 label: no dots, at most 63 characters.
DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
#: An object name / a namespace in a JSON (and Kubernetes) schema.
KubeName = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "maxLength": 253, "pattern": f"^{DNS_1123_SUBDOMAIN.pattern}$"}
    ),
]
KubeNamespace = Annotated[
    str,
    WithJsonSchema({"type": "string", "maxLength": 63, "pattern": f"^{DNS_1123_LABEL.pattern}$"}),
]
HaproxyName = Annotated[str, WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_:.-]+$"})]


# --- metrics -------------------------------------------------------------------


class MetricNames(StrictModel):
    """Metric and label names, so any exporter's naming can be used."""

    requests_total: str = "http_requests_total"
    status_label: str = "code"
    error_status_regex: str = "5.."  # HAProxy's exporter labels codes "5xx": "5.." matches too
    unauthorized_status_regex: str = "401|403"
    duration_histogram: str = "http_request_duration_seconds"
    memory_bytes: str = "process_resident_memory_bytes"
    cpu_seconds_total: str = "process_cpu_seconds_total"
    connections: str = "http_active_connections"
    suspicious_events_total: str = "rollguard_suspicious_requests_total"
    vulnerabilities: str = "vulnerabilities"
    severity_label: str = "severity"


class ScrapeSource(StrictModel):
    """The embedded default: scrape Prometheus text from each version's endpoint."""

    provider: Literal["scrape"] = "scrape"
    stable: HttpUrl
    canary: HttpUrl
    scrape_interval: Seconds = 1.0
    timeout: Seconds = 2.0
    names: MetricNames = MetricNames()


#: The Prometheus source's credentials (bearer token, or user and password, from env).
PrometheusAuth = sources.HttpAuth


class PrometheusSource(StrictModel):
    """A Prometheus server's HTTP API, queried with PromQL built from the policy."""

    provider: Literal["prometheus"] = "prometheus"
    address: HttpUrl
    stable_selector: str = 'version="stable"'
    canary_selector: str = 'version="canary"'
    timeout: Seconds = 5.0
    retries: int = Field(default=2, ge=0, le=10)
    auth: PrometheusAuth = PrometheusAuth()
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    names: MetricNames = MetricNames()
    signals: dict[sources.SignalName, sources.CustomSignalSpec[sources.PromQLText]] = {}
    #: How often Prometheus scrapes the series behind the selectors; only used to warn when
    #: a sequential test's window is shorter than two scrapes (rollguard.engine.cadence).
    #: Left out, ``watch`` asks Prometheus for its global scrape_interval.
    scrape_interval: Seconds | None = None


class ReplaySource(StrictModel):
    """Recorded series from a CSV file (docs/replay-format.md)."""

    provider: Literal["replay"] = "replay"
    file: str


MetricSource = Annotated[
    ScrapeSource | PrometheusSource | ReplaySource | sources.QuerySource,
    Field(discriminator="provider"),
]

# --- executors -----------------------------------------------------------------


class LocalExecutorSpec(StrictModel):
    """The demo's built-in router, driven over its admin HTTP API."""

    type: Literal["local"] = "local"
    router: HttpUrl


#: HAProxy's own grammar for proxy and server names (``invalid_char()`` in its sources):
#: anything else could never name a backend, and ``;`` or a newline would start a second
#: runtime API command.
HAPROXY_NAME = re.compile(r"[A-Za-z0-9_:.-]+")


class HaproxyExecutorSpec(StrictModel):
    """HAProxy's runtime API over its stats socket."""

    type: Literal["haproxy"] = "haproxy"
    socket: str
    backend: HaproxyName
    stable_server: HaproxyName = "stable"
    canary_server: HaproxyName = "canary"

    @field_validator("backend", "stable_server", "canary_server")
    @classmethod
    def _haproxy_name(cls, name: str) -> str:
        if not HAPROXY_NAME.fullmatch(name):
            raise ValueError(
                f"{name[:80]!r} is not an HAProxy name: use letters, digits and _ : . - only"
            )
        return name

    @model_validator(mode="after")
    def _two_servers(self) -> HaproxyExecutorSpec:
        if self.stable_server == self.canary_server:
            raise FieldError(
                ("canary_server",),
                "stable_server and canary_server must name two different servers",
            )
        return self


class KubernetesRouterSpec(StrictModel):
    """A Kubernetes traffic router used for gradual shifting and isolation."""

    kind: Literal["gateway-httproute", "istio-virtualservice", "nginx-ingress"]
    name: str
    stable_backend: str | None = None
    canary_backend: str | None = None


class KubernetesExecutorSpec(StrictModel):
    """A Deployment rolled back with ``kubectl rollout undo`` semantics."""

    type: Literal["kubernetes"] = "kubernetes"
    deployment: KubeName
    namespace: KubeNamespace = "default"
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    rollout_timeout: Seconds = 300.0
    router: KubernetesRouterSpec | None = None
    to_revision: int | None = Field(default=None, ge=1)  # as ``rollout undo --to-revision``
    stable_deployment: KubeName | None = (
        None  # scaled up by scaling_and_rollback; default: deployment
    )
    poll_interval: Seconds = 2.0
    conflict_retries: int = Field(default=5, ge=0, le=50)

    @property
    def stable_by_replicas(self) -> str | None:
        """The stable Deployment when the canary's share is set by replica counts: no
        router, and a stable Deployment of its own behind the same Service."""
        if self.router is not None or self.stable_deployment in (None, self.deployment):
            return None
        return self.stable_deployment

    @field_validator("deployment", "stable_deployment")
    @classmethod
    def _object_name(cls, name: str | None) -> str | None:
        problem = None if name is None else kubernetes_name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        return name

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, name: str) -> str:
        problem = kubernetes_name_problem(name, label=True)
        if problem is not None:
            raise ValueError(problem)
        return name


class CommandExecutorSpec(StrictModel):
    """User commands per action, e.g. ``helm rollback my-release``."""

    type: Literal["command"] = "command"
    rollback: list[str] | None = None
    set_weight: list[str] | None = None
    scale: list[str] | None = None
    isolate: list[str] | None = None
    status: list[str] | None = None
    shell: bool = False
    timeout: Seconds = 120.0
    env: dict[str, str] = {}
    pass_env: list[str] = []  # variables passed through from rollguard's environment
    workdir: str | None = None

    @field_validator("pass_env")
    @classmethod
    def _variable_names(cls, names: list[str]) -> list[str]:
        for index, name in enumerate(names):
            if not _ANY_ENV_NAME.fullmatch(name):  # never quoted: it may be a pasted secret
                raise ValueError(
                    f"entry {index + 1}: expected the name of an environment variable "
                    "(letters, digits, underscores)"
                )
        return names

    @model_validator(mode="after")
    def _commands_are_usable(self) -> CommandExecutorSpec:
        if not self.rollback:
            raise FieldError(
                ("rollback",), "the command executor needs a rollback command (a list of arguments)"
            )
        for action in ("rollback", "set_weight", "scale", "isolate", "status"):
            argv = getattr(self, action)
            if argv is None:
                continue
            if not argv:
                raise FieldError((action,), "give the command as a non-empty list of arguments")
            if self.shell and len(argv) != 1:
                raise FieldError((action,), "with shell: true give one command line, not a list")
            for index, argument in enumerate(argv):
                for name in _placeholders(argument):
                    if name not in COMMAND_PLACEHOLDERS:
                        raise FieldError(
                            (action, index),
                            f"unknown placeholder {{{name}}} in {argument!r} "
                            f"(known: {', '.join(sorted(COMMAND_PLACEHOLDERS))})",
                        )
                quoted = quoted_placeholders(argument) if self.shell else []
                if quoted:
                    raise FieldError(
                        (action, index),
                        f"placeholder {{{quoted[0]}}} is inside quotes in "
                        f"{argument[:200]!r}; with shell: true rollguard shell-quotes each value "
                        "itself, so write it bare (echo rollback {deployment}), never in quotes",
                    )
        return self


_ANY_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

#: Placeholders a command argument may use, filled in by the command executor.
COMMAND_PLACEHOLDERS = frozenset({"deployment", "action", "percent", "stable_percent", "factor"})


def _placeholders(argument: str) -> list[str]:
    """The ``{name}`` fields of one argument (``{{`` escapes a brace)."""
    return [name for _, name, _, _ in string.Formatter().parse(argument) if name is not None]


def quoted_placeholders(line: str) -> list[str]:
    """The placeholders of a ``/bin/sh`` command line that sit inside single or double quotes.

    A shell-quoted value (``'$(id)'``) is one safe word only where the shell reads it
    unquoted: inside double quotes its single quotes are literal and ``$(id)`` runs.
    Follows POSIX sh quoting: a backslash escapes the next character outside single
    quotes; nothing is special inside single quotes.
    """
    found: list[str] = []
    quote = ""  # "", "'" or '"'
    for literal, name, _, _ in string.Formatter().parse(line):
        escaped = False
        for char in literal:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "'":
                escaped = True
            elif quote and char == quote:
                quote = ""
            elif not quote and char in "'\"":
                quote = char
        if name is not None and quote:
            found.append(name)
    return found


class NoopExecutorSpec(StrictModel):
    """Decide and record, change nothing (a policy-wide dry run)."""

    type: Literal["noop"] = "noop"


ExecutorSpec = Annotated[
    LocalExecutorSpec
    | HaproxyExecutorSpec
    | KubernetesExecutorSpec
    | CommandExecutorSpec
    | NoopExecutorSpec,
    Field(discriminator="type"),
]


def kubernetes_name_problem(name: str, *, label: bool = False) -> str | None:
    """Why ``name`` is not a Kubernetes object name (a namespace when ``label``), else None."""
    grammar, limit = (DNS_1123_LABEL, 63) if label else (DNS_1123_SUBDOMAIN, 253)
    if len(name) <= limit and grammar.fullmatch(name):
        return None
    what = "a DNS-1123 label" if label else "a DNS-1123 name"
    allowed = "lower-case letters, digits and '-'" + ("" if label else " and '.'")
    return (
        f"{name[:80]!r} is not {what} as Kubernetes requires: {allowed}, starting and "
        f"ending with a letter or digit, at most {limit} characters"
    )


class Target(StrictModel):
    """What is being deployed and how rollguard acts on it."""

    deployment: Annotated[KubeName, Field(min_length=1)]
    executor: ExecutorSpec = NoopExecutorSpec()

    @field_validator("deployment")
    @classmethod
    def _dns_1123(cls, name: str) -> str:
        problem = kubernetes_name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        return name


# --- analysis, rollback, baseline ------------------------------------------------


class Analysis(StrictModel):
    """How measurements become decisions; defaults are documented in docs/policy.md."""

    interval: Seconds = 5.0
    min_requests: int = Field(default=20, ge=0)
    persistence: int = Field(default=2, ge=1)
    no_data_limit: int = Field(default=3, ge=1)
    inconclusive_action: Literal["none", "immediate_rollback"] = "none"
    warmup: Seconds | None = None


class Rollback(StrictModel):
    """How the rollback actions proceed."""

    steps: list[Annotated[int, Field(gt=0, le=100)]] = [25, 50, 75, 100]
    step_wait: Seconds = 60.0
    recovered_below_error_rate_percent: float = Field(default=2.0, ge=0, le=100)
    scale_factor: float = Field(default=2.0, ge=1.0)
    canary_weight: int = Field(default=20, ge=0, le=100)

    @model_validator(mode="after")
    def _steps_increase_to_100(self) -> Rollback:
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise FieldError(("steps",), "rollback steps must increase")
        if not self.steps or self.steps[-1] != 100:
            raise FieldError(
                ("steps",), "the last rollback step must be 100 (all traffic on stable)"
            )
        return self


class BaselineRef(StrictModel):
    """Where relative triggers find their reference."""

    file: str | None = None
    max_age: Seconds | None = None
    compare_with: Literal["baseline", "stable"] = "baseline"


# --- notifications and audit -------------------------------------------------------


class AppriseChannel(StrictModel):
    """Any apprise URL (Slack, Teams, PagerDuty, e-mail, ...); use ``url_env`` for secrets."""

    type: Literal["apprise"] = "apprise"
    url: str | None = None
    url_env: EnvName | None = None


class WebhookChannel(StrictModel):
    """A generic JSON webhook signed with HMAC-SHA256."""

    type: Literal["webhook"] = "webhook"
    url: str | None = None
    url_env: EnvName | None = None
    secret_env: EnvName | None = None
    timeout: Seconds = 5.0


class LogChannel(StrictModel):
    """Write the notification to rollguard's log."""

    type: Literal["log"] = "log"


Channel = Annotated[AppriseChannel | WebhookChannel | LogChannel, Field(discriminator="type")]


class Notifications(StrictModel):
    """Routes by alert name (``critical_alert`` ...) to channel names."""

    channels: dict[str, Channel] = {}
    routes: dict[str, list[str]] = {}
    retries: int = Field(default=2, ge=0, le=10)
    retry_backoff: Seconds = 0.5

    @model_validator(mode="after")
    def _routes_name_known_channels(self) -> Notifications:
        for route, names in self.routes.items():
            for index, name in enumerate(names):
                if name not in self.channels:
                    raise FieldError(
                        ("routes", route, index),
                        f"route {route!r} names unknown channel {name!r}",
                    )
        return self


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
AUDIT_SCHEMES = {"sqlite": "sqlite:///PATH", "postgresql": "postgresql://USER@HOST/DB"}


def audit_url_problem(url: str) -> str | None:
    """Why ``url`` cannot name an audit store (wrong shape or scheme), else None.

    Checked on the scheme alone, so a password in the URL is never echoed. It is bad
    input (exit 2), unlike a store that is well named but down (exit 6).
    """
    accepted = ", ".join(f"{scheme} ({form})" for scheme, form in AUDIT_SCHEMES.items())
    scheme, separator, _ = url.partition("://")
    if not separator or not _SCHEME.fullmatch(scheme):
        return f"not a database URL; accepted schemes: {accepted}"
    if scheme.split("+", 1)[0].lower() not in AUDIT_SCHEMES:
        return f"unsupported scheme {scheme!r}; accepted schemes: {accepted}"
    return None


class AuditConfig(StrictModel):
    """The audit store: SQLite by default, PostgreSQL by URL (``url_env`` for secrets).

    ``key_env`` names the environment variable holding the secret key of a keyed
    (HMAC) chain; the key itself never appears in a policy.
    """

    url: str = "sqlite:///.rollguard/audit.db"
    url_env: EnvName | None = None
    key_env: str | None = None

    @field_validator("key_env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        problem = None if name is None else key_env_problem(name)
        if problem is not None:
            raise ValueError(problem)
        return name

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        problem = audit_url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return url


# --- the policy ------------------------------------------------------------------


#: A trigger block as the policy file writes it.
TriggerBlock = trig.MetricTriggerSpec | trig.SecurityTriggerSpec | trig.RuntimeSecuritySpec


class Policy(StrictModel):
    """A whole policy. The named trigger blocks may sit at the top level."""

    version: Literal[1] = 1
    name: str = "rollguard"
    target: Target
    metrics: MetricSource
    analysis: Analysis = Analysis()
    rollback: Rollback = Rollback()
    baseline: BaselineRef = BaselineRef()
    notifications: Notifications = Notifications()
    audit: AuditConfig = AuditConfig()
    error_rate_trigger: trig.MetricTriggerSpec | None = None
    latency_trigger: trig.MetricTriggerSpec | None = None
    memory_trigger: trig.MetricTriggerSpec | None = None
    cpu_trigger: trig.MetricTriggerSpec | None = None
    connections_trigger: trig.MetricTriggerSpec | None = None
    security_trigger: trig.SecurityTriggerSpec | None = None
    runtime_security: trig.RuntimeSecuritySpec | None = None
    triggers: dict[str, trig.MetricTriggerSpec] = {}
    promotion: Promotion | None = None

    @field_validator(*trig.DEFAULT_SIGNAL)
    @classmethod
    def _block_threshold(
        cls, spec: trig.MetricTriggerSpec | None, info: ValidationInfo
    ) -> trig.MetricTriggerSpec | None:
        if spec is not None:
            signal = spec.signal or trig.DEFAULT_SIGNAL[str(info.field_name)]
            problem = consistency.signal_problem(signal, spec, info.data.get("metrics"))
            if problem is not None:
                raise ValueError(problem)
        return spec

    @field_validator("triggers")
    @classmethod
    def _named_trigger_thresholds(
        cls, specs: dict[str, trig.MetricTriggerSpec], info: ValidationInfo
    ) -> dict[str, trig.MetricTriggerSpec]:
        metrics = info.data.get("metrics")
        for name, spec in specs.items():
            if spec.signal is None:
                continue  # consistency.check names the missing signal at its line
            problem = consistency.signal_problem(spec.signal, spec, metrics)
            if problem is not None:
                raise ValueError(f"{name}.{problem}")
        return specs

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        """The checks that span sections (rollguard.policy.consistency)."""
        consistency.check(self)
        return self

    @cached_property
    def rules(self) -> list[Trigger]:
        """Every metric rule, named blocks first, in a stable order (computed once)."""
        out: list[Trigger] = []
        custom = sources.custom_signals(self.metrics)
        for name in trig.DEFAULT_SIGNAL:
            spec = getattr(self, name)
            if spec is not None:
                out.append(trig.from_metric_spec(name, spec, custom))
        if self.runtime_security is not None:
            out.extend(trig.from_runtime_security(self.runtime_security))
        out.extend(
            trig.from_metric_spec(name, spec, custom) for name, spec in self.triggers.items()
        )
        return out

    def digest(self) -> str:
        """SHA-256 of the policy's canonical JSON; recorded with every audit entry."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        # Computed once: a frozen policy never changes, and every audit append asks.
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def reference_for(self, rule: Trigger) -> Literal["baseline", "stable"] | None:
        """What a relative rule compares with, after the baseline section's default."""
        if rule.threshold.reference is None:
            return None
        if rule.threshold.reference == "stable" or self.baseline.compare_with == "stable":
            return "stable"
        return "baseline"


__all__ = ["Action", "EnvName", "Policy", "Trigger", "env_name_problem", "key_env_problem"]
