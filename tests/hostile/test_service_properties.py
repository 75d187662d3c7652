"""Hostile answers and bodies over real sockets, and hostile files through the CLI.

A Prometheus answer of any shape is a measurement (an error or no data), never an
exception that would end a watch; the API answers any body with a client error,
never a 5xx; a command given a hostile file exits 0 or 2 with its problems, one
per line, never 1 or a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_runner import LOCATED, Rollguard
from hostile_strategies import (
    HOSTILE,
    assert_one_line,
    deep_json,
    hostile_text,
    planted,
    raw_json,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.policy.model import PrometheusSource
from rollguard.signals import Measurement, Phase, Query, Signal, Version
from servers.answers import Answers, answering

VECTOR = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {"le": "+Inf"}, "value": [1, "3"]}]},
}
REFUSED = {"status": "error", "errorType": "bad_data", "error": "parse error"}
POLICY = {
    "target": {"deployment": "shop"},
    "metrics": {"provider": "prometheus", "address": "http://127.0.0.1:9"},
    "error_rate_trigger": {"threshold": "5%"},
}
ARTILLERY = {
    "aggregate": {
        "counters": {"http.codes.200": 10},
        "summaries": {"http.response_time": {"p95": 5, "mean": 2}},
    }
}


@pytest.fixture(scope="module")
def server() -> Iterator[Answers]:
    with answering() as answers:
        yield answers


def measure(url: str) -> list[Measurement]:
    async def go() -> list[Measurement]:
        source = PrometheusSource.model_validate({"address": url, "retries": 0})
        provider = PrometheusProvider(source)
        try:
            queries = [
                Query(Signal.ERROR_RATE_PERCENT, Version.CANARY, 60),
                Query(Signal.LATENCY_BUCKETS, Version.CANARY, 60),
                Query(Signal.MEMORY_MB, Version.STABLE, 60),
            ]
            return await provider.measure(queries, now=1.0)
        finally:
            await provider.aclose()

    return asyncio.run(go())


@settings(HOSTILE, max_examples=60)
@given(st.one_of(planted(VECTOR), planted(REFUSED), raw_json, hostile_text, deep_json))
def test_any_prometheus_answer_is_a_measurement(server: Answers, body: str) -> None:
    server.body = body.encode("utf-8", errors="surrogatepass")
    for measured in measure(server.url):
        assert measured.phase in (Phase.OK, Phase.NO_DATA, Phase.ERROR)
        if measured.phase is not Phase.OK:
            assert_one_line(measured.reason)
            assert len(measured.reason) < 500


# --- the API --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from server.serve_harness import start_serve, write_policies

    folder: Path = tmp_path_factory.mktemp("policies")
    write_policies(folder)
    with start_serve(folder) as running:
        yield running


@settings(HOSTILE, max_examples=60)
@given(
    st.sampled_from(["pause", "resume", "abort", "promote", "releases"]),
    st.one_of(planted({"reason": "deploy 42", "version": "v2"}), raw_json, hostile_text, deep_json),
)
def test_any_api_body_is_a_client_error_at_worst(served: Any, command: str, body: str) -> None:
    from server.serve_harness import TOKEN

    answer = served.client.post(
        f"/api/v1/deployments/shop/{command}",
        content=body.encode("utf-8", errors="surrogatepass"),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert "\n" not in answer.text.strip()


# --- the CLI --------------------------------------------------------------------------


@settings(HOSTILE, max_examples=40)
@given(st.one_of(hostile_text, deep_json, planted(POLICY)))
def test_policy_check_on_any_file_exits_0_or_2(
    rollguard: Rollguard, tmp_path: Path, text: str
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(text, encoding="utf-8", errors="surrogatepass")
    ran = rollguard("policy", "check", str(policy))
    assert ran.code in (0, 2), ran.stderr
    assert "Traceback" not in ran.stderr
    if ran.code == 2:
        problems = [line for line in (ran.stdout + ran.stderr).splitlines() if line.strip()]
        assert problems
        for line in problems:
            assert LOCATED.match(line.removeprefix("error: ")), line


@settings(HOSTILE, max_examples=40)
@given(st.one_of(planted(ARTILLERY), raw_json, hostile_text))
def test_baseline_create_on_any_report_exits_0_or_2(
    rollguard: Rollguard, tmp_path: Path, text: str
) -> None:
    report = tmp_path / "report.json"
    report.write_text(text, encoding="utf-8", errors="surrogatepass")
    ran = rollguard("baseline", "create", "--from-artillery", str(report))  # into tmp_path
    assert ran.code in (0, 2), ran.stderr
    if ran.code == 2:
        assert len([line for line in ran.stderr.splitlines() if line.strip()]) == 1, ran.stderr
