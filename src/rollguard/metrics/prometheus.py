"""The production metrics provider: PromQL over a Prometheus server's HTTP API.

Expressions come from :mod:`rollguard.promql`. Everything that can go
wrong on the way (server down, timeout, bad credentials, bad PromQL, an empty
result, NaN or infinity) becomes a ``NO_DATA`` or ``ERROR`` measurement with
the reason; nothing is ever turned into a number. Transport failures, 429 and
5xx answers are retried (:mod:`rollguard.retry`: exponential backoff, or the
wait a ``Retry-After`` header asks for); 4xx answers (bad query, bad
credentials) are not, since asking again cannot help.

An answer is untrusted input: it is read no further than
:data:`~rollguard.documents.MAX_ANSWER_BYTES`, parsed within the depth limit of
:mod:`rollguard.documents`, and any shape other than Prometheus' own is an
``ERROR`` measurement naming what was wrong — never an exception that could
end a watch.

The counts a sequential test is fed (``requests``, ``errors``,
``latency_buckets``) are not asked as ``increase()``, which extrapolates:
each counter series' raw samples in the window and its last sample before it
are asked (:func:`rollguard.promql.growth`) and differenced exactly
(:mod:`rollguard.metrics.growth`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from rollguard import documents, promql
from rollguard.metrics import growth
from rollguard.metrics.http import Answer, HttpEdge, QueryFailed, auth_from, verify_option
from rollguard.policy.model import PrometheusSource
from rollguard.policy.units import parse_duration
from rollguard.retry import SETTINGS, Sleep
from rollguard.signals import Measurement, Query


@dataclass(frozen=True)
class Sample:
    """One series' value from an instant query, or one sample of a range selector's."""

    labels: Mapping[str, str]
    value: float
    at: float = 0.0  # the sample's time (an instant vector's: the evaluation time)


#: A query's built expressions and the asks its measurement needs.
_Plan = tuple[promql.Counted | promql.Expressions, list[promql.Ask]]


class PrometheusProvider:
    """Answers rollguard queries with PromQL; one shared HTTP client per provider."""

    def __init__(
        self,
        source: PrometheusSource,
        *,
        client: httpx.AsyncClient | None = None,
        backoff_seconds: float | None = None,
        sleep: Sleep = asyncio.sleep,
        edge: HttpEdge | None = None,
    ) -> None:
        self._source = source
        self._edge = edge or prometheus_edge(
            source, client=client, backoff_seconds=backoff_seconds, sleep=sleep
        )
        self._planned: dict[Query, _Plan] = {}

    async def collect(self, *, now: float) -> None:
        """Prometheus scrapes by itself; nothing to refresh."""

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        """One measurement per query, evaluated at ``now``. Each expression is asked once,
        however many of the queries need it (``requests`` and ``errors`` both read the
        requests' samples), and all at once."""
        plans = [self._plan(query) for query in queries]
        pending: dict[promql.Ask, Awaitable[list[Sample]]] = {}
        for query, (_, asked) in zip(queries, plans, strict=True):
            for ask in asked:
                if ask not in pending:
                    pending[ask] = self._ask(query, ask, now)
        answered = await asyncio.gather(*pending.values(), return_exceptions=True)
        answers = dict(zip(pending, answered, strict=True))
        return [
            _read(query, built, now, {ask: answers[ask] for ask in asked})
            for query, (built, asked) in zip(queries, plans, strict=True)
        ]

    async def aclose(self) -> None:
        await self._edge.aclose()

    async def global_scrape_interval(self) -> float | None:
        """Seconds of Prometheus' global ``scrape_interval`` (``/api/v1/status/config``).

        None when it cannot be read (a server without that API, an answer not shaped
        as Prometheus' own): it only decides a warning, never a measurement.
        """
        try:
            answer = await self._edge.request("GET", "/api/v1/status/config")
            data = _data(answer, self._edge)
        except QueryFailed:
            return None
        return _global_scrape_interval(data.get("yaml"))

    def _plan(self, query: Query) -> _Plan:
        """What ``query`` is built from and the expressions it asks, made once: the same
        queries come back every interval, from every watcher."""
        plan = self._planned.get(query)
        if plan is None:
            built = promql.counted_query(query, self._source) or promql.build(query, self._source)
            plan = self._planned[query] = (built, promql.asks(built, query.window_seconds))
        return plan

    def _ask(self, query: Query, ask: promql.Ask, at: float) -> Awaitable[list[Sample]]:
        """The series answering ``ask`` (one of ``query``'s expressions), one sample each,
        or every sample when it is ranged; :mod:`rollguard.metrics.batching` answers
        many queries at once here."""
        expression, ranged = ask
        return instant(self._edge, expression, at, ranged=ranged)


def _read(
    query: Query,
    built: promql.Counted | promql.Expressions,
    now: float,
    answers: Mapping[promql.Ask, list[Sample] | BaseException],
) -> Measurement:
    """A measurement from the answers to its asks: a failed ask (a failed batch, for each
    of its deployments) fails it, as it would have failed a query asked alone."""
    failed = next((a for a in answers.values() if isinstance(a, BaseException)), None)
    if isinstance(failed, QueryFailed):
        return _failed(query, now, failed)
    if failed is not None:
        raise failed
    samples = {ask: a for ask, a in answers.items() if not isinstance(a, BaseException)}
    try:
        return _measured(query, built, now, samples)
    except QueryFailed as failure:  # what this deployment's answer lacks
        return _failed(query, now, failure)


def _measured(
    query: Query,
    built: promql.Counted | promql.Expressions,
    now: float,
    answers: Mapping[promql.Ask, list[Sample]],
) -> Measurement:
    """``query``'s measurement from the answers to its :func:`rollguard.promql.asks`;
    QueryFailed when they cannot give one."""
    if isinstance(built, promql.Counted):
        return _counted(query, built, now, answers)
    return _evaluated(query, built, now, answers)


def _failed(query: Query, now: float, failed: QueryFailed) -> Measurement:
    """No data, or an error, with the reason."""
    if failed.no_data:
        return Measurement.no_data(query, now, failed.reason)
    return Measurement.error(query, now, failed.reason)


def _evaluated(
    query: Query,
    expressions: promql.Expressions,
    now: float,
    answers: Mapping[promql.Ask, list[Sample]],
) -> Measurement:
    """A value PromQL computes: a rate, a ratio, a quantile, a gauge."""
    samples = answers[expressions.value, False]
    requests = None
    if expressions.requests is not None and expressions.requests != expressions.value:
        requests = _count(answers[expressions.requests, False])
    value = _single(samples, expressions.value)
    if expressions.requests == expressions.value:
        requests = value
    return Measurement.ok(query, now, value, requests=requests)


def _counted(
    query: Query, counted: promql.Counted, now: float, answers: Mapping[promql.Ask, list[Sample]]
) -> Measurement:
    """A count the exact growth of counter series gives (no extrapolation)."""
    window = query.window_seconds
    start = (round(now * 1000) - round(window * 1000)) / 1000

    def selection(selected: str) -> growth.Selection:
        inside, before = promql.growth(selected, window)
        return growth.selection(
            ((_series_key(s), s.at, s.value) for s in answers[inside, True]),
            ((_series_key(s), s.value) for s in answers[before, False]),
            start=start,
        )

    value, requests = selection(counted.value), selection(counted.requests)
    from_zero = requests.observed  # the version was scraped before the window
    request_count = growth.total(requests.growths(from_zero=from_zero))
    if request_count is None or not math.isfinite(request_count):
        raise QueryFailed(
            f"no series of {counted.requests} has samples to count in the last "
            f"{promql.duration(window)} (one inside and one before, or two inside)",
            no_data=True,
        )
    grown = value.growths(from_zero=from_zero)
    if counted.per_bucket:
        return _buckets(query, now, growth.by_label(grown, "le"), counted.value)
    # no series of the value's while requests were counted is zero, as errors are
    return Measurement.ok(query, now, growth.total(grown) or 0.0, requests=request_count)


def prometheus_edge(
    source: PrometheusSource,
    *,
    client: httpx.AsyncClient | None = None,
    backoff_seconds: float | None = None,
    sleep: Sleep = asyncio.sleep,
) -> HttpEdge:
    """The HTTP edge to a source's Prometheus: its timeout, retries, credentials and TLS."""
    address = str(source.address)
    return HttpEdge(
        name="Prometheus",
        base=address,
        timeout=source.timeout,
        retry=SETTINGS["prometheus"].with_retries(source.retries, backoff_seconds=backoff_seconds),
        auth=auth_from(source.auth),
        verify=verify_option(
            name="Prometheus",
            address=address,
            ca_file=source.ca_file,
            insecure=source.insecure_skip_verify,
        ),
        client=client,
        sleep=sleep,
    )


async def instant(
    edge: HttpEdge, expression: str, at: float, *, shown: str | None = None, ranged: bool = False
) -> list[Sample]:
    """The series of an instant query at ``at``; ``shown`` names a long expression in reasons.

    ``ranged`` asks for a range selector's raw samples (a matrix), one :class:`Sample` each.

    Long expressions (a batch of deployments) are sent as a form (POST), which
    Prometheus accepts as it does GET, so no URL grows past a proxy's limit.
    """
    params = {"query": expression, "time": at}
    if len(expression) > _LONGEST_GET:
        answer = await edge.request(
            "POST",
            "/api/v1/query",
            content=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        answer = await edge.request("GET", "/api/v1/query", params=params)
    data = _data(answer, edge)
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and not ranged:
        at, value = _point(result)
        return [Sample({}, value, at)]
    expected = "matrix" if ranged else "vector"
    if kind != expected or not isinstance(result, list):
        what = shown or expression
        wanted = "a range vector" if ranged else "an instant vector"
        raise QueryFailed(f"expected {wanted} from {what!r}, got {_shown(kind)}")
    if ranged:
        return [sample for item in result for sample in _samples_of(item)]
    return [_sample(item) for item in result]


#: Longer expressions are POSTed (a URL of a few kilobytes is safe everywhere).
_LONGEST_GET = 2048


def _data(answer: Answer, edge: HttpEdge) -> dict[str, Any]:
    """The ``data`` of a Prometheus API answer, or the reason it has none."""
    body = answer.json(f"Prometheus at {edge.shown}")
    if not isinstance(body, dict):
        raise QueryFailed(
            f"Prometheus at {edge.shown} answered something that is not an API answer"
        )
    if body.get("status") != "success":
        kind = _shown(body.get("errorType", "error"))
        message = _shown(body.get("error", "?"))
        raise QueryFailed(f"Prometheus rejected the query ({kind}): {message}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise QueryFailed(f"Prometheus at {edge.shown} answered without data")
    return data


def _global_scrape_interval(text: object) -> float | None:
    """``global.scrape_interval`` of a loaded configuration (Prometheus writes its default)."""
    if not isinstance(text, str):
        return None
    try:
        config = documents.load_yaml(
            text, source="Prometheus' configuration", max_bytes=documents.MAX_ANSWER_BYTES
        )
        return parse_duration(config["global"]["scrape_interval"])
    except (documents.DocumentError, TypeError, KeyError, ValueError):
        return None


def _shown(raw: object, limit: int = 200) -> str:
    """Part of an answer, fit for a reason: one line, at most ``limit`` characters."""
    text = " ".join(str(raw).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _point(raw: object) -> tuple[float, float]:
    """The time and value of a ``[time, "value"]`` pair."""
    if not isinstance(raw, list) or len(raw) != 2:
        raise QueryFailed(f"Prometheus answered a sample that is not [time, value]: {_shown(raw)}")
    return _number(raw[0]), _number(raw[1])


def _sample(item: object) -> Sample:
    """One series of an instant vector: ``{"metric": {...}, "value": [time, "value"]}``."""
    if not isinstance(item, dict):
        raise QueryFailed(f"Prometheus answered a series that is not an object: {_shown(item)}")
    at, value = _point(item.get("value"))
    return Sample(_labels(item), value, at)


def _samples_of(item: object) -> list[Sample]:
    """One series of a matrix: ``{"metric": {...}, "values": [[time, "value"], ...]}``."""
    if not isinstance(item, dict) or not isinstance(item.get("values"), list):
        raise QueryFailed(f"Prometheus answered a series without values: {_shown(item)}")
    labels = _labels(item)
    return [Sample(labels, value, at) for at, value in map(_point, item["values"])]


def _series_key(sample: Sample) -> growth.SeriesKey:
    """Which series a sample belongs to (functions may drop ``__name__``; one name is asked)."""
    return frozenset((k, v) for k, v in sample.labels.items() if k != "__name__")


def _labels(series: dict[str, Any]) -> Mapping[str, str]:
    labels = series.get("metric", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise QueryFailed(f"Prometheus answered labels that are not strings: {_shown(labels)}")
    return labels


def _number(raw: object) -> float:
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        try:
            return float(raw)
        except (ValueError, OverflowError):
            pass
    raise QueryFailed(f"Prometheus returned a value that is not a number: {_shown(repr(raw))}")


def _single(samples: list[Sample], expression: str) -> float:
    """The one value of an aggregated expression; several series mean a bad query."""
    if not samples:
        raise QueryFailed(f"no series matched {expression}", no_data=True)
    if len(samples) > 1:
        raise QueryFailed(
            f"{expression} returned {len(samples)} series; aggregate it to one (e.g. sum(...))"
        )
    value = samples[0].value
    if math.isnan(value):
        raise QueryFailed(f"{expression} is NaN (no traffic in the window?)", no_data=True)
    if math.isinf(value):
        raise QueryFailed(f"{expression} is {value}", no_data=True)
    return value


def _count(samples: list[Sample]) -> float | None:
    """The request count behind a value; unknown (None) rather than a guessed zero."""
    if len(samples) != 1 or not math.isfinite(samples[0].value):
        return None
    return samples[0].value


def _buckets(query: Query, now: float, per_le: Mapping[str, float], selection: str) -> Measurement:
    """Histogram bucket counts keyed by upper bound; the value is the request count."""
    buckets: dict[float, float] = {}
    for bound, count in per_le.items():
        if not bound:
            return Measurement.error(query, now, f"{selection} has a series without le")
        if math.isnan(count):
            return Measurement.no_data(query, now, f"{selection} has a NaN bucket")
        try:
            upper = float(bound)
        except ValueError:
            return Measurement.error(query, now, f"{selection} has le={_shown(bound)!r}")
        buckets[upper] = buckets.get(upper, 0.0) + count
    if math.inf not in buckets:
        return Measurement.no_data(query, now, f"no +Inf bucket in {selection}")
    total = buckets[math.inf]
    return Measurement.ok(query, now, total, requests=total, buckets=buckets)
