"""How a canary share maps to pod counts without a router, and the policies that may use it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollguard.errors import PolicyError
from rollguard.executors.replica_split import Split, split
from rollguard.policy import parse_policy

PROMOTED = """
target:
  deployment: shop
  executor: {{type: kubernetes, deployment: shop-canary{stable}}}
metrics: {{provider: scrape, stable: "http://127.0.0.1:1/metrics", canary: "http://127.0.0.1:2/metrics"}}
error_rate_trigger: {{increase_percent: 200, compare_with: stable}}
promotion: {{steps: [10, 50, 100]}}
"""


@pytest.mark.parametrize(
    ("total", "percent", "canary", "achieved"),
    [
        (4, 10, 1, 25.0),  # 0.4 of a pod: at least one
        (10, 25, 3, 30.0),  # 2.5 rounds half up, not to even
        (10, 24, 2, 20.0),
        (20, 5, 1, 5.0),
        (5, 99, 4, 80.0),  # 4.95 would leave stable no pod before the last step
        (3, 50, 2, 66.7),
        (6, 0, 0, 0.0),
        (6, 100, 6, 100.0),
    ],
)
def test_a_share_becomes_pod_counts(total: int, percent: int, canary: int, achieved: float) -> None:
    assert split(total, percent) == Split(canary=canary, stable=total - canary)
    found = split(total, percent)
    assert isinstance(found, Split)
    assert found.achieved_weight == achieved


@given(total=st.integers(2, 200), percent=st.integers(1, 99))
def test_each_share_gets_the_nearest_count_that_leaves_both_versions_a_pod(
    total: int, percent: int
) -> None:
    found = split(total, percent)
    assert isinstance(found, Split)
    assert found.total == total
    assert 1 <= found.canary <= total - 1
    exact = total * percent / 100
    for other in range(1, total):  # no count both versions keep a pod with is nearer
        assert abs(found.canary - exact) <= abs(other - exact)


def test_one_pod_cannot_be_split() -> None:
    assert split(1, 50) == (
        "a 50% canary share by replica counts needs at least 2 pods in all "
        "(one per version); the two Deployments have 1"
    )
    assert split(1, 100) == Split(canary=1, stable=0)


def test_promotion_on_kubernetes_needs_a_router_or_a_stable_deployment() -> None:
    with pytest.raises(PolicyError, match=r"target\.executor\.stable_deployment"):
        parse_policy(PROMOTED.format(stable=""))
    with pytest.raises(PolicyError, match="not the canary's"):
        parse_policy(PROMOTED.format(stable=", stable_deployment: shop-canary"))
    policy = parse_policy(PROMOTED.format(stable=", stable_deployment: shop"))
    assert policy.promotion is not None
