"""Custom signals: a policy names its own gauge or ratio, with its queries and unit.

A ratio (errors over requests) is judged by thresholds and the sequential
error-rate test; a gauge by thresholds only, and ``policy check`` says so at
the trigger's line. The signal is measured by the policy's provider (here the
command provider, running real programs).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from rollguard.errors import PolicyError
from rollguard.metrics.factory import make_provider
from rollguard.policy.explain import custom_signals
from rollguard.policy.load import parse_policy
from rollguard.policy.sources import custom_signals as defined
from rollguard.signals import Phase, Query, Version

PRINT = [sys.executable, "-c", "import sys; print(sys.argv[1])"]


def policy_text(queue_detection: str = "threshold", signal: str = "queue_depth") -> str:
    def prints(value: str) -> str:
        return "[" + ", ".join(f"'{a}'" for a in [*PRINT, value]) + "]"

    return f"""target: {{deployment: shop}}
metrics:
  provider: command
  versions: {{stable: v1, canary: v2}}
  queries:
    requests: {prints("100")}
    errors: {prints("1")}
  signals:
    checkout_failure_rate:
      errors: {prints("3")}
      requests: {prints("50")}
    queue_depth:
      unit: jobs
      query: {prints("12")}
baseline: {{compare_with: stable}}
error_rate_trigger: {{threshold: 5%}}
triggers:
  checkout_failures:
    signal: checkout_failure_rate
    threshold: 2%
    detection: {{method: both}}
  queue:
    signal: {signal}
    threshold: 100
    detection: {{method: {queue_detection}}}
"""


def test_policy_check_says_which_methods_each_signal_supports() -> None:
    policy = parse_policy(policy_text())
    said = custom_signals(policy)
    assert any(
        s.startswith("signal checkout_failure_rate: a ratio") and "sequential" in s for s in said
    ), said
    assert any(
        s.startswith("signal queue_depth: a gauge") and "in jobs" in s and "thresholds only" in s
        for s in said
    ), said


def test_a_gauge_is_refused_a_sequential_test_at_its_line() -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(policy_text(queue_detection="sequential"), source="p.yaml")
    message = str(raised.value)
    assert "queue_depth" in message
    assert "use method: threshold" in message


def test_an_unknown_signal_is_refused_with_the_names_known() -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(policy_text(signal="queue_lenght"), source="p.yaml")
    message = str(raised.value)
    assert "p.yaml:17:" in message
    assert "unknown signal 'queue_lenght'" in message
    assert "defined under metrics.signals: checkout_failure_rate, queue_depth" in message


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ("{unit: jobs}", "give either query"),
        ("{errors: [x]}", "needs both errors and requests"),
        ("{query: [x], errors: [y], requests: [z]}", "not both"),
    ],
)
def test_a_signal_is_a_gauge_or_a_ratio(definition: str, problem: str) -> None:
    text = policy_text().replace(
        "    queue_depth:\n      unit: jobs\n",
        "    odd: " + definition + "\n    queue_depth:\n      unit: jobs\n",
    )
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, source="p.yaml")
    assert problem in str(raised.value)


async def test_the_provider_measures_a_custom_ratio_and_its_parts(tmp_path: Path) -> None:
    policy = parse_policy(policy_text())
    signals = defined(policy.metrics)
    ratio, gauge = signals["checkout_failure_rate"], signals["queue_depth"]
    requests, errors = ratio.counts()
    wanted = [Query(s, Version.CANARY, 60.0) for s in (ratio, requests, errors, gauge)]
    provider = make_provider(policy, base_dir=tmp_path)
    try:
        got = await provider.measure(wanted, now=time.time())
    finally:
        await provider.aclose()
    assert [m.phase for m in got] == [Phase.OK] * 4, [m.reason for m in got]
    assert [m.value for m in got] == [pytest.approx(6.0), 50, 3, 12]
    assert got[0].requests == 50
