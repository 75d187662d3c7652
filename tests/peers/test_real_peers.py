"""The real Argo Rollouts and Flagger next to rollguard: the benchmark's harness, small.

One bad release (canary errors 1% -> 10%) and one healthy release, each run once
with all three tools at the same time on the real control plane, the same
Prometheus and the same series (bench/peers; its smoke settings make every
outcome near-certain: 10 s intervals, a 95% success floor for both peers).
Each tool's decision is read from the API server. A change in a peer's build,
in its CRDs, in our manifests for it or in the harness shows here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bench.peers.controllers import require_peers
from bench.peers.harness import Case, Outcome, run_case
from bench.peers.manifests import TOOLS
from bench.peers.suite import SMOKE_ROW, cases, environment
from kubernetes import client as k8s

from servers.kube_cluster import KubeCluster

pytestmark = [pytest.mark.real_server, pytest.mark.slow]

BAD, HEALTHY = "errors 1%->10%", "healthy"


@pytest.fixture(scope="module")
def outcomes(
    kube_cluster: KubeCluster, kube_admin: k8s.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Outcome]]:
    """Both scenarios, run at once; each scenario's outcome per tool."""
    require_peers()
    directory: Path = tmp_path_factory.mktemp("peers")
    runs = cases(SMOKE_ROW, 1, 1)
    with environment(kube_cluster, directory, SMOKE_ROW.scale, kube_admin) as env:

        def one(item: tuple[int, Case]) -> dict[str, Outcome]:
            return run_case(env, item[1], item[0])

        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            found = list(pool.map(one, enumerate(runs)))
    return {case.scenario.name: outcome for case, outcome in zip(runs, found, strict=True)}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("tool", TOOLS)
def test_each_tool_rolls_back_the_bad_release(
    outcomes: dict[str, dict[str, Outcome]], tool: str
) -> None:
    outcome = outcomes[BAD][tool]
    assert outcome.decided is not None, outcome
    assert outcome.decided >= 0, outcome  # the fault starts with the canary
    assert outcome.drained is not None, outcome  # its traffic back on stable
    assert outcome.recovered is not None, outcome  # and its release too
    assert outcome.decided <= outcome.drained <= outcome.recovered, outcome
    assert not outcome.promoted, outcome


@pytest.mark.timeout(900)
@pytest.mark.parametrize("tool", TOOLS)
def test_each_tool_lets_the_healthy_release_through(
    outcomes: dict[str, dict[str, Outcome]], tool: str
) -> None:
    outcome = outcomes[HEALTHY][tool]
    assert outcome.decided is None, outcome
    assert outcome.promoted, outcome
