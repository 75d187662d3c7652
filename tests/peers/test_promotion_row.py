"""The promotion row's own arithmetic, without a cluster: series that follow a tool's
share, the exposure counted from them, and the table read back from runs.jsonl."""

from __future__ import annotations

import json
import math

from bench.peers import promotion_table
from bench.peers.harness import Case, Outcome
from bench.peers.manifests import ARGO, FLAGGER, ROLLGUARD
from bench.peers.run import _loaded, _record
from bench.peers.stepping import STEPPED, SteppedRun, shares
from bench.peers.suite import PROMOTION_ROW

HEALTHY, BAD = PROMOTION_ROW.scenarios


def test_series_follow_the_share_and_exposure_stops_on_stable() -> None:
    # scale 1: one 5 s draw is 5 wall seconds; 500 requests/s in all
    run = SteppedRun("r", BAD, 1.0, seed=7)
    assert run.values("canary", 1e9)[:2] == (0.0, 0.0)  # before the release: zeros
    run.start = 100.0
    run.observe(90.0, 0.0)
    run.observe(110.0, 0.5)  # half the traffic from the 3rd draw on
    run.observe(120.0, 0.0)  # back on stable from the 5th
    requests, _, _, _, _ = run.values("canary", 100.0 + 40.0)  # 8 draws done
    stable, _, _, _, _ = run.values("stable", 100.0 + 40.0)
    early, late = run.canary_requests(109.0), run.canary_requests(140.0)
    assert early == 0.0  # the first two draws had share 0
    assert late == requests  # nothing after the 4th draw
    assert 0.7 * 2500 < requests < 1.3 * 2500  # two draws at 250/s
    assert 0.8 * 17500 < stable < 1.2 * 17500
    # errors at the canary are the bad scenario's 5%, a draw is drawn once
    assert run.values("canary", 140.0)[0] == requests
    assert run.mean_share(105.0, 115.0) == 0.25


def test_shares_read_from_each_tools_objects() -> None:
    def rs(image: str, available: int) -> dict[str, object]:
        template = {"spec": {"containers": [{"image": image}]}}
        return {
            "metadata": {"labels": {"app": "argo"}},
            "spec": {"template": template},
            "status": {"availableReplicas": available},
        }

    def deployment(name: str, available: int) -> dict[str, object]:
        return {"metadata": {"name": name}, "status": {"availableReplicas": available}}

    ingress = {
        "metadata": {
            "name": "flagger-canary",
            "annotations": {"nginx.ingress.kubernetes.io/canary-weight": "6"},
        }
    }
    objects = {
        "replicasets": [rs("app:v1", 4), rs("app:v2", 1)],
        "ingresses": [ingress],
        "canaries": [{"metadata": {"name": "flagger"}, "status": {"phase": "Progressing"}}],
        "deployments": [deployment("rollguard", 19), deployment("rollguard-canary", 1)],
    }
    assert shares(objects) == {ARGO: 0.2, FLAGGER: 0.06, ROLLGUARD: 0.05}  # type: ignore[arg-type]


def _outcome(tool: str, **fields: float | bool | None) -> Outcome:
    return Outcome(tool, **fields)  # type: ignore[arg-type]


def test_table_from_saved_runs_against_the_goals() -> None:
    runs = [
        (
            Case(HEALTHY, STEPPED, 3.0, 1),
            {
                ARGO: _outcome(ARGO, promoted=True, promoted_at=2430.0, exposed=9e5),
                FLAGGER: _outcome(FLAGGER, promoted=True, promoted_at=1620.0, exposed=5e5),
                ROLLGUARD: _outcome(ROLLGUARD, promoted=True, promoted_at=300.0, exposed=6e5),
            },
        ),
        (
            Case(BAD, STEPPED, 3.0, 2),
            {
                ARGO: _outcome(ARGO, decided=1200.0, drained=1210.0, exposed=120000.0),
                FLAGGER: _outcome(FLAGGER, decided=630.0, drained=633.0, exposed=6000.0),
                ROLLGUARD: _outcome(ROLLGUARD, decided=30.0, drained=33.0, exposed=1500.0),
            },
        ),
    ]
    # through runs.jsonl, as --tabulate reads it
    saved = [_loaded(json.loads(json.dumps(_record(run)))) for run in runs]
    found = promotion_table.figures(saved)
    assert found[("healthy", ROLLGUARD)].to_100 == 300.0
    assert found[("errors 1%->5%", FLAGGER)].exposed == 6000.0
    assert found[("errors 1%->5%", ARGO)].to_100 == math.inf  # never promoted
    assert list(found)[:3] == [("healthy", ARGO), ("healthy", FLAGGER), ("healthy", ROLLGUARD)]
    lines = promotion_table.against_goals(found)
    assert "- healthy: rollguard's time to 100% / Flagger's = 0.19 (goal ≤ 0.33: met)" in lines
    assert (
        "- errors 1%->5%: rollguard's canary requests served / Flagger's = 0.25 "
        "(goal ≤ 0.20: not met)" in lines
    )
    printed: list[str] = []
    promotion_table.table(saved, printed.append)
    assert "| healthy | rollguard | 1 | 1/1 | 300 s | never | never | — |" in printed
    assert "| errors 1%->5% | Flagger | 1 | 0/1 | never | 630 s | 633 s | 6,000 |" in printed
    # a peer that never promoted gives no ratio, rather than a goal met by default
    runs[0][1][FLAGGER].promoted, runs[0][1][FLAGGER].promoted_at = False, None
    lines = promotion_table.against_goals(promotion_table.figures(runs))
    assert (
        "- healthy: Flagger never had all the traffic on the new version "
        "(promoted 0 of 1): no ratio" in lines
    )
    assert "- healthy: rollguard's time to 100% / Argo Rollouts' = 0.12 (goal ≤ 0.33: met)" in lines
