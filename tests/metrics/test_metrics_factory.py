"""make_provider picks the backend the policy names, and says plainly when it cannot."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from rollguard.errors import InputError, ProviderError
from rollguard.metrics.factory import make_provider
from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.metrics.replay import ReplayProvider
from rollguard.metrics.scrape import ScrapeProvider
from rollguard.policy.load import parse_policy
from rollguard.policy.model import Policy

TRIGGERS = """
error_rate_trigger: {threshold: 5%, measurement_window: 5 minutes}
latency_trigger: {threshold: 500ms, measurement_window: 3 minutes}
"""


def policy(metrics: str) -> Policy:
    return parse_policy(f"target: {{deployment: web}}\nmetrics: {metrics}\n{TRIGGERS}")


def test_replay_paths_resolve_against_the_policy_directory(tmp_path: Path) -> None:
    (tmp_path / "run.csv").write_text(
        "time,version,requests,errors,latency_p95_ms,memory_mb\n5,stable,10,0,100,64\n"
    )
    provider = make_provider(policy("{provider: replay, file: run.csv}"), base_dir=tmp_path)
    assert isinstance(provider, ReplayProvider)
    assert provider.times == [5.0]


def test_a_malformed_replay_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "run.csv").write_text("time,version\n")
    with pytest.raises(InputError, match=r"run.csv:1: header: missing column 'requests'"):
        make_provider(policy("{provider: replay, file: run.csv}"), base_dir=tmp_path)


def test_scrape_keeps_the_longest_window_and_a_margin(tmp_path: Path) -> None:
    metrics = "{provider: scrape, stable: 'http://127.0.0.1:1/m', canary: 'http://127.0.0.1:2/m'}"
    provider = make_provider(policy(metrics), base_dir=tmp_path)
    assert isinstance(provider, ScrapeProvider)
    assert provider.retention_seconds == 300 + 60
    asyncio.run(provider.aclose())


def test_prometheus_is_built_with_the_given_client(tmp_path: Path) -> None:
    provider = make_provider(
        policy("{provider: prometheus, address: 'http://127.0.0.1:9090'}"), base_dir=tmp_path
    )
    assert isinstance(provider, PrometheusProvider)
    asyncio.run(provider.aclose())


def test_a_missing_prometheus_module_is_a_provider_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rollguard.metrics.prometheus", None)
    with pytest.raises(ProviderError, match="prometheus metrics provider is not available"):
        make_provider(
            policy("{provider: prometheus, address: 'http://127.0.0.1:9090'}"), base_dir=tmp_path
        )
