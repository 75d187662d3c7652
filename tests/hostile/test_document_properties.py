"""Every parser of outside documents, fed generated hostile input.

For each: it returns a value, or raises rollguard's own error (exit 2) with a
one-line message; never another exception. Inputs are bounded in size by the
strategies, so each example ends in bounded time and memory.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hostile_runner import LOCATED
from hostile_strategies import (
    HOSTILE,
    assert_one_line,
    deep_json,
    dumps,
    hostile_text,
    hostile_value,
    planted,
)
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from rollguard.audit import spool_chain
from rollguard.baseline import load_baseline
from rollguard.baselines import artillery, k6, locust
from rollguard.baselines.summary import make_baseline, to_json
from rollguard.errors import InputError, PolicyError
from rollguard.metrics import recording
from rollguard.metrics.exposition import ExpositionError
from rollguard.metrics.exposition import parse as parse_exposition
from rollguard.metrics.replay import ReplayProvider
from rollguard.policy import parse_policy, units
from rollguard.scanners.ignores import load_ignores
from rollguard.scanners.reports import parse_report
from rollguard.security.accesslog import parse_line
from rollguard.security.falco import parse_alerts
from rollguard.signals import Query, Signal, Version

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED = (ROOT / "examples" / "seed-policy.yaml").read_text()


def fixture(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


def write(text: str, name: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="rg-hostile-"))
    path = folder / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


# --- policies -------------------------------------------------------------------------

SEED_DOCUMENT = json.loads(json.dumps(YAML(typ="safe").load(SEED)))


def check_policy(text: str) -> None:
    try:
        parse_policy(text, source="p.yaml")
    except PolicyError as error:
        for line in str(error).splitlines():
            assert LOCATED.match(line), line
            assert len(line) < 2000


@HOSTILE
@given(planted(SEED_DOCUMENT))
def test_a_policy_with_a_hostile_value_anywhere(text: str) -> None:
    check_policy(text)


@HOSTILE
@given(st.one_of(hostile_text, deep_json, deep_json.map(lambda deep: SEED + "x: " + deep)))
def test_a_policy_of_hostile_text(text: str) -> None:
    check_policy(text)


UNIT_PARSERS = [
    units.parse_duration,
    units.parse_threshold,
    units.parse_limit,
    units.parse_rate_per_minute,
]


@HOSTILE
@given(st.sampled_from(UNIT_PARSERS), hostile_value)
def test_unit_parsers_raise_only_value_error(parser: Any, raw: Any) -> None:
    try:
        parser(raw)
    except ValueError as error:
        assert_one_line(str(error)[:1999])


# --- vulnerability reports and ignore files ---------------------------------------------

REPORTS = [
    fixture("trivy/trivy-action-alpine-3.10.json"),
    fixture("grype/chainguard-ruby-test.json"),
    fixture("sarif/scorecard-check3.sarif"),
]


@HOSTILE
@given(st.sampled_from(REPORTS).flatmap(planted))
def test_a_vulnerability_report_with_a_hostile_value(text: str) -> None:
    try:
        parse_report(text, source="r.json")
    except InputError as error:
        assert_one_line(str(error))


@HOSTILE
@given(st.one_of(hostile_text, deep_json, hostile_value.map(dumps)))
def test_a_vulnerability_report_of_hostile_text(text: str) -> None:
    try:
        parse_report(text, source="r.json")
    except InputError as error:
        assert_one_line(str(error))


@HOSTILE
@given(st.one_of(hostile_value.map(lambda v: dumps({"ignores": v})), hostile_text, deep_json))
def test_an_ignore_file_of_hostile_text(text: str) -> None:
    try:
        load_ignores(write(text, "ignore.yaml"))
    except InputError as error:
        assert_one_line(str(error))


# --- load-test reports and baselines ------------------------------------------------------

LOAD_TESTS = [
    (artillery.read, fixture("artillery/artillery-test-scripts-report-v1-minimal.json")),
    (
        artillery.read,
        {
            "aggregate": {
                "counters": {"http.codes.200": 90, "http.codes.503": 6, "errors.ETIMEDOUT": 2},
                "summaries": {"http.response_time": {"mean": 20.5, "median": 18, "p95": 60}},
            }
        },
    ),
    (k6.read, fixture("k6/k6-reporter-simple.json")),
]


def check_summary(reader: Any, path: Path) -> None:
    try:
        summary = reader(path)
        to_json(make_baseline(summary, timestamp=datetime(2026, 1, 1, tzinfo=UTC)))
    except InputError as error:
        assert_one_line(str(error))


@HOSTILE
@given(
    st.sampled_from(LOAD_TESTS).flatmap(lambda pair: planted(pair[1]).map(lambda d: (pair[0], d)))
)
def test_a_load_test_report_with_a_hostile_value(pair: tuple[Any, Any]) -> None:
    reader, text = pair
    check_summary(reader, write(text, "report.json"))


LOCUST_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,95%"
)


@HOSTILE
@given(
    st.lists(
        st.sampled_from(["10", "0", "-1", "nan", "inf", "1e400", "9" * 30, "", "x"])
        | hostile_text.map(json.dumps),
        min_size=5,
        max_size=5,
    )
)
def test_a_locust_stats_file_with_hostile_cells(cells: list[str]) -> None:
    row = ",Aggregated," + ",".join(cells)
    check_summary(locust.read, write(f"{LOCUST_HEADER}\n{row}\n", "run_stats.csv"))


GOOD_BASELINE = {
    "timestamp": "2026-01-01T00:00:00Z",
    "metrics": {"error_rate_percent": 1.0, "avg_latency_ms": 10, "p95_latency_ms": 20},
}


@HOSTILE
@given(planted(GOOD_BASELINE) | hostile_value.map(dumps))
def test_a_baseline_file_with_a_hostile_value(text: str) -> None:
    try:
        load_baseline(write(text, "baseline.json"))
    except InputError as error:
        assert_one_line(str(error))


# --- replay recordings -----------------------------------------------------------------

HEADER = "time,version,requests,errors,latency_p95_ms,memory_mb"
cell = st.sampled_from(
    [
        "0",
        "5",
        "10",
        "1e18",
        "-5",
        "nan",
        "inf",
        "1e400",
        "9" * 25,
        "",
        "stable",
        "canary",
        "2025-06-26T10:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+00:00",
    ]
) | hostile_text.filter(lambda t: "\n" not in t and "\r" not in t)


@HOSTILE
@given(st.lists(st.lists(cell, min_size=6, max_size=6), max_size=8))
def test_a_recording_with_hostile_cells(rows: list[list[str]]) -> None:
    text = (
        HEADER
        + "\n"
        + "\n".join(",".join(json.dumps(c) if "," in c else c for c in row) for row in rows)
    )
    try:
        found = recording.parse_recording(text, source="run.csv")
    except InputError as error:
        assert_one_line(str(error))
        return
    if found.rows:  # bounded for a backtest, and measurable
        span = found.rows[-1].time - found.rows[0].time
        assert span <= recording.MAX_SPAN_SECONDS
        provider = ReplayProvider(found)
        queries = [
            Query(s, v, 60)
            for s in (Signal.ERROR_RATE_PERCENT, Signal.LATENCY_P95_MS)
            for v in Version
        ]
        asyncio.run(provider.measure(queries, now=found.rows[-1].time))


# --- Falco, exposition, access logs, spool lines ----------------------------------------

FALCO = {"priority": "Critical", "rule": "Write below etc", "output": "x", "hostname": "h"}


@HOSTILE
@given(planted(FALCO) | hostile_text | deep_json)
def test_a_falco_alert_of_hostile_text(body: str) -> None:
    try:
        parse_alerts(body, where="falco")
    except InputError as error:
        assert_one_line(str(error))


EXPOSITION = (FIXTURES / "prometheus" / "1histogram.om.txt").read_text()


@HOSTILE
@given(
    st.one_of(
        hostile_text,
        st.builds(
            lambda a, b: EXPOSITION[:a] + b + EXPOSITION[a:],
            st.integers(0, len(EXPOSITION)),
            hostile_text,
        ),
    )
)
def test_metrics_exposition_of_hostile_text(body: str) -> None:
    try:
        parse_exposition(body, content_type="text/plain")
    except ExpositionError as error:
        assert_one_line(str(error))


@HOSTILE
@given(hostile_text, st.sampled_from(["combined", "haproxy"]))
def test_an_access_log_line_of_hostile_text(line: str, fmt: Any) -> None:
    try:
        parse_line(line, fmt)
    except InputError as error:
        assert_one_line(str(error))


@HOSTILE
@given(
    st.one_of(
        hostile_text,
        deep_json,
        hostile_value.map(dumps),
        planted(
            {
                "seq": 1,
                "prev": "0",
                "mac": "0",
                "record": {
                    "kind": "decision",
                    "deployment": "d",
                    "timestamp": "2026-01-01T00:00:00Z",
                },
            }
        ).map(dumps),
    )
)
def test_a_spool_line_of_hostile_text(text: str) -> None:
    found = spool_chain.read_entry(text, 1, None)
    if isinstance(found, spool_chain.Broken):
        assert_one_line(found.message)
