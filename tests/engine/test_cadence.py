"""A sequential test's window against its source's scrape interval (rollguard.engine.cadence)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from rollguard.engine.cadence import Cadence, policy_cadence, thin_windows
from rollguard.policy.model import Policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sequential-policy.yaml"


def _policy(interval: str, **metrics: Any) -> Policy:
    raw: dict[str, Any] = YAML(typ="safe").load(EXAMPLE)
    raw["analysis"]["interval"] = interval
    raw["metrics"].update(metrics)
    return Policy.model_validate(raw)


@pytest.mark.parametrize(
    ("interval", "thin"), [("5s", True), ("29.9s", True), ("30s", False), ("1m", False)]
)
def test_prometheus_needs_two_scrapes_in_each_window(interval: str, thin: bool) -> None:
    policy = _policy(interval, scrape_interval="15s")
    cadence = policy_cadence(policy)
    assert cadence == Cadence(15.0, "metrics.scrape_interval", needed=2.0)
    found = thin_windows(policy, cadence)
    # the two sequential triggers, never the memory trigger (a threshold rule)
    assert set(found) == ({"error_rate_trigger", "latency_trigger"} if thin else set())
    if thin:
        assert "set analysis.interval to 30s or more" in found["error_rate_trigger"]


def test_prometheus_without_a_stated_interval_is_unknown_to_the_policy() -> None:
    assert policy_cadence(_policy("5s")) is None


def test_the_scrape_source_needs_a_scrape_in_each_window() -> None:
    raw: dict[str, Any] = YAML(typ="safe").load(EXAMPLE)
    raw["metrics"] = {
        "provider": "scrape",
        "stable": "http://127.0.0.1:1/metrics",
        "canary": "http://127.0.0.1:2/metrics",
        "scrape_interval": "10s",
    }
    for interval, thin in (("4s", True), ("5s", False)):
        raw["analysis"]["interval"] = interval
        policy = Policy.model_validate(raw)
        cadence = policy_cadence(policy)
        assert cadence is not None
        assert cadence.needed == 0.5
        assert bool(thin_windows(policy, cadence)) is thin, interval


def test_threshold_triggers_get_no_warning() -> None:
    raw: dict[str, Any] = YAML(typ="safe").load(EXAMPLE)
    for name in ("error_rate_trigger", "latency_trigger"):
        raw[name]["detection"]["method"] = "threshold"
    raw["metrics"]["scrape_interval"] = "15s"
    policy = Policy.model_validate(raw)
    assert thin_windows(policy, Cadence(15.0, "metrics.scrape_interval")) == {}
