"""Parsing scrape bodies: the real Prometheus fixtures, and what must be refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rollguard.metrics import series
from rollguard.metrics.exposition import ExpositionError, parse


@pytest.fixture
def alltypes(fixtures_dir: Path) -> str:
    """A real /metrics scrape of Prometheus 3.1.0 (see fixtures/prometheus/SOURCES.md)."""
    return (fixtures_dir / "prometheus" / "alltypes.237mfs.prom.txt").read_text()


def test_real_scrape_declares_every_family(alltypes: str) -> None:
    exposition = parse(alltypes)
    # SOURCES.md: 105 histogram series and 999 _bucket lines in 15 histogram families.
    counts = exposition.series("prometheus_http_request_duration_seconds_count")
    assert len(counts) == 46  # one series per handler
    buckets = sum(
        len(samples) for name, samples in exposition.samples.items() if name.endswith("_bucket")
    )
    assert buckets == 999
    histogram_series = sum(
        len(samples)
        for name, samples in exposition.samples.items()
        if name.endswith("_count") and name.removesuffix("_count") + "_bucket" in exposition.samples
    )
    assert histogram_series == 105
    assert exposition.declares("prometheus_http_requests_total")


def test_real_scrape_values_and_a_quantile_from_its_buckets(alltypes: str) -> None:
    exposition = parse(alltypes)
    healthy = {
        float(dict(labels)["le"]): value
        for labels, value in exposition.series(
            "prometheus_http_request_duration_seconds_bucket"
        ).items()
        if dict(labels)["handler"] == "/"
    }
    assert healthy[0.1] == 688
    assert healthy[math.inf] == 688
    # Every observation is <= 0.1 s, so the median is half way through (0, 0.1].
    assert series.histogram_quantile(0.5, healthy) == pytest.approx(0.05)


def test_keep_drops_everything_else(alltypes: str) -> None:
    keep = {"process_resident_memory_bytes", "no_such_metric_total"}
    exposition = parse(alltypes, keep=keep)
    assert set(exposition.samples) == {"process_resident_memory_bytes"}
    assert exposition.declared == {"process_resident_memory_bytes"}
    assert not exposition.declares("no_such_metric_total")


def test_openmetrics_file_by_its_eof_marker(fixtures_dir: Path) -> None:
    text = (fixtures_dir / "prometheus" / "1histogram.om.txt").read_text()
    exposition = parse(text)
    buckets = exposition.series("golang_manual_histogram_seconds_bucket")
    assert len(buckets) == 36
    assert exposition.declares("golang_manual_histogram_seconds_sum")


def test_declared_family_without_samples_is_told_from_absent() -> None:
    text = "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n"
    exposition = parse(text)
    assert exposition.declares("http_requests_total")
    assert exposition.series("http_requests_total") == {}
    assert not exposition.declares("http_request_duration_seconds_bucket")


def test_labels_and_values() -> None:
    text = 'http_requests_total{code="500",method="GET"} 7\nup 1\n'
    exposition = parse(text)
    assert exposition.series("http_requests_total") == {(("code", "500"), ("method", "GET")): 7.0}


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("<!DOCTYPE html>\n<html><body>Login</body></html>", "text/html", "text/html"),
        ("<html><body>502 Bad Gateway</body></html>", "text/plain", "looks like HTML"),
        ('{"status": "ok"}', "text/plain", "looks like JSON"),
        ("hello world\n", "text/plain", "could not convert"),
        ("Not Found\n", "text/plain", "could not convert"),
        ("metric{code=500} 1\n", "text/plain", "Invalid labels"),
        ("\x00\x01\x02binary", "application/octet-stream", "invalid metric name"),
        ("\x08\x01", "application/vnd.google.protobuf", "protobuf"),
    ],
)
def test_refuses_what_is_not_an_exposition(body: str, content_type: str, expected: str) -> None:
    with pytest.raises(ExpositionError, match=expected):
        parse(body, content_type=content_type)
