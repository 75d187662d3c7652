"""Baselines from each real load-test report in ../shared/fixtures (values from SOURCES.md)."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollguard.baseline import load_baseline
from rollguard.baselines import artillery, k6, locust
from rollguard.baselines.summary import make_baseline, to_json
from rollguard.errors import InputError


def test_artillery_v1_aggregate_latency(fixtures_dir: Path) -> None:
    summary = artillery.read(fixtures_dir / "artillery" / "report-viewer-test_report-v1.json")
    # codes 200:4951 500:239 400:92 408:8 503:4 and 1 ESOCKETTIMEDOUT.
    assert summary.requests == 4951 + 239 + 92 + 8 + 4 + 1
    assert summary.errors == 239 + 4 + 1  # 5xx and the transport error; 400/408 are not
    assert summary.error_rate_percent == pytest.approx(100 * 244 / 5295)
    assert summary.p95_latency_ms == 24193.6
    assert summary.p50_latency_ms == 1454.9
    # v1 has no mean: it comes from the 5194 raw latencies (nanoseconds) in intermediate[].
    document = json.loads(
        (fixtures_dir / "artillery" / "report-viewer-test_report-v1.json").read_text()
    )
    raw = [ns for period in document["intermediate"] for ns in period.get("latencies") or []]
    assert len(raw) == 5194
    assert summary.avg_latency_ms == pytest.approx(statistics.fmean(raw) / 1e6)
    assert any("5194 raw latencies" in note for note in summary.notes)


def test_artillery_v2_summaries_with_engine_prefix(fixtures_dir: Path) -> None:
    summary = artillery.read(fixtures_dir / "artillery" / "report-viewer-test_report_v2.json")
    assert summary.requests == 1200
    assert summary.errors == 0  # all 1200 responses were 201
    assert summary.p95_latency_ms == 34.8
    assert summary.p50_latency_ms == 23.8
    # No mean in this build: sum / count of the DDSketch, between min 16.8 and max 210.4.
    assert 16.8 < summary.avg_latency_ms < 210.4


def test_artillery_v2_unprefixed_layout(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text(
        '{"aggregate": {"counters": {"http.requests": 100, "http.codes.200": 90,'
        ' "http.codes.503": 6, "http.codes.404": 2, "errors.ETIMEDOUT": 2},'
        ' "summaries": {"http.response_time": {"min": 5, "max": 90, "mean": 20.5,'
        ' "median": 18, "p95": 60, "count": 98}}}}'
    )
    summary = artillery.read(report)
    assert (summary.requests, summary.errors) == (100, 8)
    assert summary.avg_latency_ms == 20.5


def test_empty_artillery_run_is_refused(fixtures_dir: Path) -> None:
    path = fixtures_dir / "artillery" / "artillery-test-scripts-report-v1-minimal.json"
    with pytest.raises(
        InputError, match=r"no measurable requests.*UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    ):
        artillery.read(path)


def test_k6_summary(fixtures_dir: Path) -> None:
    summary = k6.read(fixtures_dir / "k6" / "k6-reporter-simple.json")
    assert summary.requests == 878
    assert summary.errors == 349  # http_req_failed passes
    assert summary.p95_latency_ms == pytest.approx(30.0256841)
    assert summary.avg_latency_ms == pytest.approx(21.37513127107059)
    assert summary.error_rate_percent == pytest.approx(39.749, abs=0.001)


def test_k6_grpc_only_run_is_refused(fixtures_dir: Path) -> None:
    with pytest.raises(InputError, match=r"http_reqs: missing.*grpc_reqs"):
        k6.read(fixtures_dir / "k6" / "k6-reporter-grpc.json")


def test_k6_summary_export_layout(tmp_path: Path) -> None:
    report = tmp_path / "export.json"
    report.write_text(
        '{"metrics": {"http_reqs": {"count": 200, "rate": 10},'
        ' "http_req_duration": {"avg": 12.5, "med": 10, "p(95)": 40},'
        ' "http_req_failed": {"passes": 3, "fails": 197, "value": 0.015}}}'
    )
    summary = k6.read(report)
    assert (summary.requests, summary.errors, summary.p95_latency_ms) == (200, 3, 40.0)


@pytest.mark.parametrize("name", ["phoenix-loadgen_stats.csv", "phoenix-loadgen_stats_history.csv"])
def test_locust_with_failures_file(fixtures_dir: Path, name: str) -> None:
    summary = locust.read(fixtures_dir / "locust" / name)
    assert summary.requests == 13
    # The one failure is "404 Client Error" (phoenix-loadgen_failures.csv): not an error.
    assert summary.errors == 0
    assert summary.avg_latency_ms == pytest.approx(214.428, abs=0.001)
    assert summary.p95_latency_ms == 1000
    assert summary.p50_latency_ms == 28


def test_locust_without_failures_file_counts_every_failure(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "run_stats.csv"
    copy.write_bytes((fixtures_dir / "locust" / "phoenix-loadgen_stats.csv").read_bytes())
    summary = locust.read(copy)
    assert summary.errors == 1
    assert "every Locust failure counted" in summary.notes[0]


def test_locust_all_failed(fixtures_dir: Path) -> None:
    summary = locust.read(fixtures_dir / "locust" / "locust-scenario_stats_all-failed.csv")
    assert (summary.requests, summary.errors) == (881, 881)
    assert summary.error_rate_percent == 100.0


def test_locust_failures_csv_is_not_a_stats_file(fixtures_dir: Path) -> None:
    with pytest.raises(InputError, match="not a Locust stats CSV"):
        locust.read(fixtures_dir / "locust" / "phoenix-loadgen_failures.csv")


def test_locust_empty_run_is_refused(tmp_path: Path) -> None:
    stats = tmp_path / "x_stats.csv"
    stats.write_text(
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,95%\n"
        ",Aggregated,0,0,0,0,N/A\n"
    )
    with pytest.raises(InputError, match="no measurable requests"):
        locust.read(stats)


@pytest.mark.parametrize(
    ("reader", "body", "message"),
    [
        (artillery.read, '{"aggregate": {"counters": {"vusers.created": 1', "truncated"),
        (artillery.read, "not json", "not valid JSON"),
        (artillery.read, '{"metrics": {}}', "not an Artillery report"),
        (k6.read, '{"aggregate": {}}', "not a k6 summary"),
        (k6.read, "", "is empty"),
    ],
)
def test_bad_reports(tmp_path: Path, reader: object, body: str, message: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(body)
    with pytest.raises(InputError, match=message):
        reader(path)  # type: ignore[operator]


def test_baseline_file_round_trips_through_the_seed_schema(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    summary = k6.read(fixtures_dir / "k6" / "k6-reporter-simple.json")
    stamp = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    path = tmp_path / "performance-baseline.json"
    path.write_text(to_json(make_baseline(summary, timestamp=stamp, memory_mb=120.0)))
    loaded = load_baseline(path)
    assert loaded.timestamp == stamp
    assert loaded.metrics.p95_latency_ms == pytest.approx(30.026, abs=0.001)
    assert loaded.metrics.memory_mb == 120.0
    assert loaded.thresholds["max_latency_increase_percent"] == 30.0
    assert '"timestamp": "2026-06-01T12:00:00Z"' in path.read_text()


@pytest.mark.parametrize(
    ("reader", "name", "body", "message"),
    [
        # int(Infinity) raised OverflowError, int(NaN) ValueError: both tracebacks before.
        (
            artillery.read,
            "report.json",
            '{"aggregate": {"counters": {"http.codes.200": Infinity}, "summaries":'
            ' {"http.response_time": {"p95": 5, "mean": 2}}}}',
            r"counters\.http\.codes\.200: expected a count \(a whole number, 0 or more\), got inf",
        ),
        (
            artillery.read,
            "report.json",
            '{"aggregate": {"latency": {"p95": 5, "mean": 2}, "codes": {"200": NaN}}}',
            r"aggregate\.codes\.200: expected a count",
        ),
        (
            artillery.read,
            "report.json",
            '{"aggregate": {"counters": {"http.codes.200": 10}, "summaries":'
            ' {"http.response_time": {"p95": -5, "mean": 2}}}}',
            r"p95 latency: expected milliseconds, 0 or more, got -5\.0",
        ),
        (
            k6.read,
            "summary.json",
            '{"metrics": {"http_reqs": {"count": 10}, "http_req_failed": {"passes": 12},'
            ' "http_req_duration": {"avg": 1, "p(95)": 2}}}',
            "12 failed requests but only 10 requests; the report contradicts itself",
        ),
        (
            locust.read,
            "run_stats.csv",
            "Type,Name,Request Count,Failure Count,Median Response Time,"
            "Average Response Time,95%\n,Aggregated,10,15,5,6,9\n",
            "15 failed requests but only 10 requests",
        ),
        (
            locust.read,
            "run_stats.csv",
            "Type,Name,Request Count,Failure Count,Median Response Time,"
            "Average Response Time,95%\n,Aggregated,inf,0,5,6,9\n",
            r"column 'Request Count': expected a number, 0 or more, got 'inf'",
        ),
    ],
)
def test_impossible_counts_and_latencies_are_one_input_error(
    tmp_path: Path, reader: object, name: str, body: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(InputError, match=message):
        reader(path)  # type: ignore[operator]


def test_a_deeply_nested_report_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text('{"aggregate": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(InputError, match="Artillery report nests mappings or lists more than 64"):
        artillery.read(path)
