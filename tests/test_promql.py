"""The one PromQL builder: shapes that make it correct, and the placeholders of own queries.

The Prometheus provider and the alert/dashboard generators all use it; their own
tests (``tests/metrics``, ``tests/generate``) check it against Prometheus.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rollguard import promql
from rollguard.policy.model import MetricNames, PrometheusSource
from rollguard.signals import Query, Signal, Version
from support import require_binary


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (300, "5m"),
        (90, "90s"),
        (3600, "1h"),
        (7200, "2h"),
        (5400, "90m"),
        (1.5, "1500ms"),
        (0.25, "250ms"),
    ],
)
def test_durations(seconds: float, expected: str) -> None:
    assert promql.duration(seconds) == expected


@pytest.mark.parametrize("seconds", [0, -5, 0.0001])
def test_a_window_under_a_millisecond_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        promql.duration(seconds)


def test_error_rate_is_a_percentage_of_requests() -> None:
    built = promql.for_signal(
        Signal.ERROR_RATE_PERCENT,
        names=MetricNames(),
        selector='version="canary"',
        window_seconds=300,
    )
    assert built.value == (
        '100 * (sum(rate(http_requests_total{code=~"5..",version="canary"}[5m])) '
        'or sum(rate(http_requests_total{version="canary"}[5m])) * 0) '
        '/ sum(rate(http_requests_total{version="canary"}[5m]))'
    )
    assert built.requests == 'sum(increase(http_requests_total{version="canary"}[5m]))'


def test_p95_aggregates_buckets_by_le() -> None:
    built = promql.for_signal(
        Signal.LATENCY_P95_MS, names=MetricNames(), selector='app="x"', window_seconds=180
    )
    assert built.value == (
        "1000 * histogram_quantile(0.95, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{app="x"}[3m])))'
    )


def test_names_and_labels_follow_the_policy() -> None:
    names = MetricNames(requests_total="haproxy_server_http_responses_total", status_label="code")
    source = PrometheusSource.model_validate(
        {
            "address": "http://prom:9090",
            "canary_selector": '{proxy="app",server="canary"}',
            "names": names.model_dump(),
        }
    )
    built = promql.build(Query(Signal.ERRORS, Version.CANARY, 60), source)
    assert (
        'haproxy_server_http_responses_total{code=~"5..",proxy="app",server="canary"}[1m]'
        in built.value
    )


def test_own_query_placeholders() -> None:
    source = PrometheusSource.model_validate({"address": "http://prom:9090"})
    query = Query(
        Signal.CPU_PERCENT, Version.STABLE, 120, promql='my_cpu{$selector,v="$version"}[$window]'
    )
    assert promql.build(query, source).value == 'my_cpu{version="stable",v="stable"}[2m]'


def test_own_query_gets_the_versions_selector_on_each_side() -> None:
    own = "sum(rate(errors{$selector}[$window]))"
    for version, selector in ((Version.STABLE, 'track="s"'), (Version.CANARY, 'track="c"')):
        built = promql.for_query(
            Query(Signal.ERROR_RATE_PERCENT, version, 300, own),
            names=MetricNames(),
            selector=selector,
        )
        assert built.value == f"sum(rate(errors{{{selector}}}[5m]))"
        assert built.requests is None  # the engine cannot know what an own query counts


def test_empty_selector_leaves_no_stray_comma() -> None:
    assert promql.matchers('code=~"5.."', "") == '{code=~"5.."}'
    assert promql.matchers("", "") == "{}"
    assert promql.series("up", "") == "up"
    assert promql.series("up", '{job="x"}', "") == 'up{job="x"}'


def test_selectors_may_be_written_with_or_without_braces() -> None:
    braced = PrometheusSource.model_validate(
        {"address": "http://prom:9090", "canary_selector": ' {app="x", track="c"} '}
    )
    assert promql.version_selector(braced, Version.CANARY) == 'app="x", track="c"'
    assert promql.bare('app="x"') == 'app="x"'


def test_configured_status_regexes_are_used() -> None:
    names = MetricNames(error_status_regex="5..|429", unauthorized_status_regex="401")
    error_rate = promql.for_signal(
        Signal.ERROR_RATE_PERCENT, names=names, selector='v="c"', window_seconds=60
    )
    assert 'code=~"5..|429",v="c"' in error_rate.value
    denied = promql.for_signal(
        Signal.UNAUTHORIZED_PER_MINUTE, names=names, selector='v="c"', window_seconds=60
    )
    assert 'code=~"401",v="c"' in denied.value


def test_vulnerability_severity_ignores_case_and_keeps_the_version() -> None:
    built = promql.for_signal(
        Signal.VULNERABILITIES_HIGH, names=MetricNames(), selector='v="c"', window_seconds=60
    )
    assert built.value == 'max(vulnerabilities{severity=~"(?i)high",v="c"})'


@pytest.mark.parametrize(
    ("signal", "metric"),
    [
        (Signal.ERROR_RATE_PERCENT, "http_requests_total"),
        (Signal.LATENCY_P95_MS, "http_request_duration_seconds_bucket"),
        (Signal.LATENCY_MEAN_MS, "http_request_duration_seconds_count"),
        (Signal.MEMORY_MB, "process_resident_memory_bytes"),
        (Signal.VULNERABILITIES_CRITICAL, "vulnerabilities"),
    ],
)
def test_source_metric_is_what_the_expression_reads(signal: Signal, metric: str) -> None:
    assert promql.source_metric(signal, MetricNames()) == metric
    built = promql.for_signal(signal, names=MetricNames(), selector="", window_seconds=60)
    assert f"{metric}{{" in built.value


def test_every_generated_expression_parses_with_promtool(tmp_path: Path) -> None:
    """promtool's parser is Prometheus' own: a typo in any template fails here."""
    binary = require_binary("promtool", hint="apt-get install prometheus")
    rules = []
    for index, signal in enumerate(Signal):
        built = promql.for_signal(
            signal, names=MetricNames(), selector='version="canary"', window_seconds=300
        )
        for expression in filter(None, (built.value, built.requests)):
            rules.append(
                f"      - record: rollguard:check_{index}_{len(rules)}\n"
                f"        expr: '{expression}'"
            )
    (tmp_path / "rules.yml").write_text(
        "groups:\n  - name: check\n    rules:\n" + "\n".join(rules) + "\n"
    )
    result = subprocess.run(
        [str(binary), "check", "rules", str(tmp_path / "rules.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.parametrize("signal", list(Signal))
def test_every_value_is_one_operand(signal: Signal) -> None:
    """Rules write ``value > limit``: an ``or`` at the top would swallow the comparison."""
    built = promql.for_signal(signal, names=MetricNames(), selector='v="c"', window_seconds=60)
    depth = 0
    for index, char in enumerate(built.value):
        depth += (char == "(") - (char == ")")
        assert depth > 0 or not built.value.startswith(" or ", index), built.value
