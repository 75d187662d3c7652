"""A threshold a signal can never reach, or in another signal's unit, is a policy error."""

from __future__ import annotations

import pytest

from rollguard.errors import PolicyError
from rollguard.policy import parse_policy

HEADER = """\
target: {deployment: shop}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}
baseline: {file: performance-baseline.json}
"""


@pytest.mark.parametrize(
    ("block", "message"),
    [
        # An error rate is a share of requests: 200% was accepted and could never fire.
        ("error_rate_trigger: {threshold: 200%}", "above 200% can never be reached"),
        ("error_rate_trigger: {threshold_percent: 100}", "above 100% can never be reached"),
        ("error_rate_trigger: {above: 150}", "above 150% can never be reached"),
        ("error_rate_trigger: {increase: 120}", "an increase of 120 percentage points can never"),
        (
            "triggers: {errs: {signal: error_rate_percent, threshold: 101%}}",
            "errs.threshold: above 101% can never be reached",
        ),
        ("error_rate_trigger: {threshold: 500ms}", "measured in %, but the threshold is in ms"),
        ("latency_trigger: {threshold: 5%}", "measured in ms, but the threshold is in %"),
        ("latency_trigger: {threshold_percent: 5}", "measured in ms, but the threshold is in %"),
        ("memory_trigger: {threshold: 300ms}", "measured in MB, but the threshold is in ms"),
        (
            "triggers: {conns: {signal: connections, threshold: 5MB}}",
            "connections is measured as a bare number, but the threshold is in MB",
        ),
        (
            "triggers: {b: {signal: latency_buckets, above: 1}}",
            "latency_buckets cannot be a trigger's signal",
        ),
        (
            "rollback: {recovered_below_error_rate_percent: 150}\n"
            "error_rate_trigger: {threshold: 5%}",
            "less than or equal to 100",
        ),
    ],
)
def test_impossible_thresholds_are_refused(block: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(HEADER + block + "\n", source="p.yaml")


@pytest.mark.parametrize(
    "block",
    [
        "error_rate_trigger: {threshold: 99.9%}",
        "error_rate_trigger: {threshold: 30% increase from baseline}",  # relative: any size
        "error_rate_trigger: {increase_percent: 400}",
        "cpu_trigger: {threshold: 250%}",  # 2.5 cores busy is a real reading
        "latency_trigger: {threshold: 2s}",
        "latency_trigger: {threshold: 30% increase from baseline}",
        "memory_trigger: {threshold: 1GB}",
        "memory_trigger: {threshold: 50MB increase from baseline}",
        "connections_trigger: {threshold: 500}",
        "triggers: {p50: {signal: latency_p50_ms, threshold: 250}}",
    ],
)
def test_thresholds_the_signal_can_reach_load(block: str) -> None:
    assert parse_policy(HEADER + block + "\n").rules
