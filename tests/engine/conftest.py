"""Engine fixtures: policies built from YAML text, measurements built by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rollguard.policy import Policy, parse_policy

BASE = """
target: {deployment: shop}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/metrics", canary: "http://127.0.0.1:2/metrics"}
"""
ANALYSIS = "persistence: 1, min_requests: 10, no_data_limit: 3"


@pytest.fixture
def make_policy() -> Callable[..., Policy]:
    """A policy from the shared header plus the given trigger YAML."""

    def build(triggers: str, analysis: str = ANALYSIS) -> Policy:
        text = BASE + "analysis: {" + analysis + "}\n" + triggers
        return parse_policy(text, source="test.yaml")

    return build
