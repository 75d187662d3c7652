"""The metrics sources that run the policy's own queries (docs/metrics.md).

InfluxDB, Graphite, Loki, CloudWatch, Datadog, New Relic, ``web`` and
``command`` have no naming convention rollguard could build queries from, as it
does for Prometheus exporters. So each such source lists, under ``queries:``,
the query behind every signal its triggers use, in its backend's own language,
with placeholders (:data:`PLACEHOLDERS`) filled in per version and window. The
error rate comes from the ``errors`` and ``requests`` counts (which also feed
the sequential error-rate test), or from a query of its own.

Any source that runs queries (Prometheus included) may also define custom
signals under ``signals:``: a gauge (one ``query``, judged by thresholds) or a
ratio (``errors`` over ``requests`` as a percentage, judged by thresholds and
by the sequential error-rate test).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

from rollguard.policy.envnames import EnvName
from rollguard.policy.triggers import Seconds, StrictModel
from rollguard.signals import CustomSignal, Signal

Q = TypeVar("Q")

#: What every query may contain; each source says how it writes each one (docs/metrics.md).
PLACEHOLDERS = ("$version", "$window", "$start", "$end")
#: What a Prometheus source's PromQL may contain (docs/prometheus.md).
PROMQL_PLACEHOLDERS = ("$selector", "$window", "$version")
_PLACEHOLDER = re.compile(r"\$([A-Za-z_]\w*)")
_SIGNAL_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def placeholder_problem(text: str, known: tuple[str, ...] = PLACEHOLDERS) -> str | None:
    """Why ``text`` cannot be a query template (an unknown ``$name``), else None."""
    for name in _PLACEHOLDER.findall(text):
        if f"${name}" not in known:
            return f"unknown placeholder ${name} (known: {', '.join(known)})"
    return None


def _checked(text: str, known: tuple[str, ...]) -> str:
    problem = placeholder_problem(text, known)
    if problem is not None:
        raise ValueError(problem)
    if not text.strip():
        raise ValueError("a query cannot be empty")
    return text


def _template(text: str) -> str:
    return _checked(text, PLACEHOLDERS)


def _promql_template(text: str) -> str:
    return _checked(text, PROMQL_PLACEHOLDERS)


#: A query in the backend's language, with placeholders.
QueryText = Annotated[str, AfterValidator(_template)]
#: A custom signal's PromQL: the version's selector, the window and the version's name.
PromQLText = Annotated[str, AfterValidator(_promql_template)]


class SignalQueries(StrictModel, Generic[Q]):
    """The query behind each built-in signal; a signal without one cannot be measured.

    ``error_rate_percent`` is ``100 * errors / requests`` unless given its own query.
    """

    requests: Q | None = None
    errors: Q | None = None
    error_rate_percent: Q | None = None
    latency_p95_ms: Q | None = None
    latency_p50_ms: Q | None = None
    latency_mean_ms: Q | None = None
    memory_mb: Q | None = None
    cpu_percent: Q | None = None
    connections: Q | None = None
    unauthorized_per_minute: Q | None = None
    suspicious_events: Q | None = None
    vulnerabilities_critical: Q | None = None
    vulnerabilities_high: Q | None = None

    def of(self, signal: Signal) -> Q | None:
        """The query for ``signal``, or None."""
        found: Q | None = getattr(self, signal.value, None)
        return found

    def unanswered(self, signal: Signal) -> str | None:
        """Why ``signal`` cannot be measured with these queries, else None."""
        if signal is Signal.ERROR_RATE_PERCENT:
            if self.error_rate_percent is not None or (
                self.errors is not None and self.requests is not None
            ):
                return None
            return "give metrics.queries.errors and metrics.queries.requests"
        if signal.value not in type(self).model_fields:
            return f"no query can give {signal.value} here"
        if self.of(signal) is None:
            return f"give metrics.queries.{signal.value}"
        return None


class CustomSignalSpec(StrictModel, Generic[Q]):
    """A signal the policy defines: a gauge (``query``) or a ratio (``errors``/``requests``)."""

    unit: str = ""
    query: Q | None = None
    errors: Q | None = None
    requests: Q | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> CustomSignalSpec[Q]:
        gauge = self.query is not None
        ratio = self.errors is not None or self.requests is not None
        if gauge == ratio:
            raise ValueError(
                "give either query (a gauge) or errors and requests (a ratio, in %), not both"
            )
        if ratio and (self.errors is None or self.requests is None):
            raise ValueError("a ratio needs both errors and requests")
        return self

    def ratio(self) -> tuple[Q, Q] | None:
        """(errors, requests) of a ratio; None for a gauge."""
        if self.errors is None or self.requests is None:
            return None
        return self.errors, self.requests

    def signal(self, name: str) -> CustomSignal:
        """The engine's handle on this signal."""
        if self.query is not None:
            return CustomSignal(name, self.unit, "gauge")
        return CustomSignal(name, self.unit or "%", "ratio")


def _signal_name(name: str) -> str:
    if not _SIGNAL_NAME.fullmatch(name):
        raise ValueError(f"a signal name is lower-case letters, digits and _, got {name!r}")
    if name in {signal.value for signal in Signal}:
        raise ValueError(f"{name} is a built-in signal; give the custom one another name")
    return name


SignalName = Annotated[str, BeforeValidator(_signal_name)]


class VersionValues(StrictModel):
    """What ``$version`` becomes for each version: its label, tag or dimension value."""

    stable: str = Field(default="stable", min_length=1)
    canary: str = Field(default="canary", min_length=1)


class HttpAuth(StrictModel):
    """Credentials are read from the environment so they never sit in a policy."""

    bearer_token_env: EnvName | None = None
    username: str | None = None
    password_env: EnvName | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> HttpAuth:
        if self.bearer_token_env is not None and self.username is not None:
            raise ValueError("give bearer_token_env or username + password_env, not both")
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env go together")
        return self


class HttpSource(StrictModel):
    """What every source behind an HTTP API shares."""

    timeout: Seconds = 5.0
    retries: int = Field(default=2, ge=0, le=10)
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    versions: VersionValues = VersionValues()


class InfluxDBSource(HttpSource):
    """InfluxDB 1.x: InfluxQL over ``/query``."""

    provider: Literal["influxdb"] = "influxdb"
    address: HttpUrl
    database: str = Field(min_length=1)
    retention_policy: str | None = None
    auth: HttpAuth = HttpAuth()
    queries: SignalQueries[QueryText] = SignalQueries[QueryText]()
    signals: dict[SignalName, CustomSignalSpec[QueryText]] = {}


Aggregate = Literal["sum", "average", "max", "min", "last"]


def _target_shorthand(raw: Any) -> Any:
    return {"target": raw} if isinstance(raw, str) else raw


class GraphiteTarget(StrictModel):
    """A render target; its points in the window are reduced by ``aggregate``."""

    target: QueryText
    aggregate: Aggregate | None = None  # sum for counts, average otherwise


GraphiteQuery = Annotated[GraphiteTarget, BeforeValidator(_target_shorthand)]


class GraphiteSource(HttpSource):
    """Graphite's render API (``/render?format=json``)."""

    provider: Literal["graphite"] = "graphite"
    address: HttpUrl
    auth: HttpAuth = HttpAuth()
    queries: SignalQueries[GraphiteQuery] = SignalQueries[GraphiteQuery]()
    signals: dict[SignalName, CustomSignalSpec[GraphiteQuery]] = {}


class LokiSource(HttpSource):
    """Grafana Loki: LogQL metric queries over ``/loki/api/v1/query``."""

    provider: Literal["loki"] = "loki"
    address: HttpUrl
    tenant: str | None = None  # sent as X-Scope-OrgID
    auth: HttpAuth = HttpAuth()
    queries: SignalQueries[QueryText] = SignalQueries[QueryText]()
    signals: dict[SignalName, CustomSignalSpec[QueryText]] = {}


_STATISTIC = re.compile(
    r"SampleCount|Average|Sum|Minimum|Maximum|IQM|(p|tm|wm|tc|ts)\d{1,2}(\.\d+)?"
)


class CloudWatchMetric(StrictModel):
    """One CloudWatch metric and statistic; ``$version`` may appear in dimension values."""

    namespace: str = Field(min_length=1, max_length=255)
    metric: str = Field(min_length=1, max_length=255)
    dimensions: dict[str, str] = Field(default={}, max_length=30)
    stat: str = "Sum"
    scale: float = 1.0  # e.g. 1000 for seconds to ms; 0.00000095367431640625 for bytes to MiB

    @field_validator("stat")
    @classmethod
    def _known_statistic(cls, stat: str) -> str:
        if not _STATISTIC.fullmatch(stat):
            raise ValueError(
                "expected a CloudWatch statistic: SampleCount, Average, Sum, Minimum, Maximum, "
                f"IQM or a percentile such as p95, got {stat!r}"
            )
        return stat

    @field_validator("scale")
    @classmethod
    def _nonzero(cls, scale: float) -> float:
        if scale == 0:
            raise ValueError("scale cannot be 0")
        return scale


class CloudWatchSource(StrictModel):
    """Amazon CloudWatch's ``GetMetricData`` through boto3 (its credential chain).

    The key pair may instead come from two variables the policy names
    (``access_key_id_env`` and ``secret_access_key_env``, together).
    """

    provider: Literal["cloudwatch"] = "cloudwatch"
    region: str = Field(min_length=1)
    endpoint_url: HttpUrl | None = None
    profile: str | None = None
    access_key_id_env: EnvName | None = None
    secret_access_key_env: EnvName | None = None
    timeout: Seconds = 10.0
    retries: int = Field(default=2, ge=0, le=10)
    versions: VersionValues = VersionValues()
    queries: SignalQueries[CloudWatchMetric] = SignalQueries[CloudWatchMetric]()
    signals: dict[SignalName, CustomSignalSpec[CloudWatchMetric]] = {}

    @model_validator(mode="after")
    def _key_pair(self) -> CloudWatchSource:
        if (self.access_key_id_env is None) != (self.secret_access_key_env is None):
            raise ValueError("access_key_id_env and secret_access_key_env go together")
        if self.profile is not None and self.access_key_id_env is not None:
            raise ValueError("give profile or access_key_id_env + secret_access_key_env, not both")
        return self


DatadogAggregator = Literal["avg", "min", "max", "sum", "last"]


def _query_shorthand(raw: Any) -> Any:
    return {"query": raw} if isinstance(raw, str) else raw


class DatadogMetricQuery(StrictModel):
    """A metrics query reduced to one number by ``aggregator`` over the window."""

    query: QueryText
    aggregator: DatadogAggregator | None = None  # sum for counts, avg otherwise


DatadogQuery = Annotated[DatadogMetricQuery, BeforeValidator(_query_shorthand)]


class DatadogSource(HttpSource):
    """Datadog's scalar metrics query API (``/api/v2/query/scalar``)."""

    provider: Literal["datadog"] = "datadog"
    address: HttpUrl = HttpUrl("https://api.datadoghq.com")
    api_key_env: EnvName
    app_key_env: EnvName
    queries: SignalQueries[DatadogQuery] = SignalQueries[DatadogQuery]()
    signals: dict[SignalName, CustomSignalSpec[DatadogQuery]] = {}


class NewRelicSource(HttpSource):
    """New Relic: NRQL through NerdGraph (GraphQL)."""

    provider: Literal["newrelic"] = "newrelic"
    address: HttpUrl = HttpUrl("https://api.newrelic.com/graphql")
    account_id: int = Field(gt=0)
    api_key_env: EnvName
    queries: SignalQueries[QueryText] = SignalQueries[QueryText]()
    signals: dict[SignalName, CustomSignalSpec[QueryText]] = {}


def _json_path(raw: str) -> str:
    import jsonpath  # lazily: only policies with a web source pay for it

    try:
        jsonpath.compile(raw)
    except jsonpath.JSONPathError as exc:
        raise ValueError(f"not a JSONPath: {str(exc).splitlines()[0]}") from None
    return raw


def _url_template(raw: str) -> str:
    _template(raw)
    if not raw.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return raw


class WebQuery(StrictModel):
    """An endpoint answering JSON, and the JSONPath to the number in it (Argo's Web provider)."""

    url: Annotated[str, AfterValidator(_url_template)]
    json_path: Annotated[str, AfterValidator(_json_path)]
    method: Literal["GET", "POST"] = "GET"
    body: QueryText | None = None


class WebSource(HttpSource):
    """Any HTTP endpoint that answers JSON; headers may come from environment variables."""

    provider: Literal["web"] = "web"
    headers: dict[str, str] = {}
    headers_env: dict[str, EnvName] = {}  # header name -> variable holding its value
    queries: SignalQueries[WebQuery] = SignalQueries[WebQuery]()
    signals: dict[SignalName, CustomSignalSpec[WebQuery]] = {}


def _argv(argv: list[str]) -> list[str]:
    for argument in argv:
        problem = placeholder_problem(argument)
        if problem is not None:
            raise ValueError(problem)
    return argv


Argv = Annotated[list[str], Field(min_length=1), AfterValidator(_argv)]


class CommandSource(StrictModel):
    """Programs that print one number (a vendor CLI, a script), run without a shell."""

    provider: Literal["command"] = "command"
    timeout: Seconds = 10.0
    pass_env: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]] = []
    versions: VersionValues = VersionValues()
    queries: SignalQueries[Argv] = SignalQueries[Argv]()
    signals: dict[SignalName, CustomSignalSpec[Argv]] = {}


#: Every source that takes ``queries:`` and ``signals:``.
QuerySource = (
    InfluxDBSource
    | GraphiteSource
    | LokiSource
    | CloudWatchSource
    | DatadogSource
    | NewRelicSource
    | WebSource
    | CommandSource
)


def custom_signals(source: object) -> dict[str, CustomSignal]:
    """The signals ``source`` defines under ``signals:``, by name (none for other sources)."""
    specs: dict[str, CustomSignalSpec[Any]] = getattr(source, "signals", {})
    return {name: spec.signal(name) for name, spec in specs.items()}


def unanswered(source: QuerySource, signal: Signal | CustomSignal) -> str | None:
    """Why ``source`` cannot measure ``signal`` (a query is missing), else None."""
    if isinstance(signal, CustomSignal):
        if signal.name not in source.signals:
            return f"metrics.signals has no {signal.name}"
        spec = source.signals[signal.name]
        if signal.part != "value" and spec.query is not None:
            return f"{signal.name} is a gauge, with no errors and requests to count"
        return None
    if signal is Signal.LATENCY_BUCKETS:
        return "histogram buckets come from Prometheus, scrape or replay sources only"
    return source.queries.unanswered(signal)
