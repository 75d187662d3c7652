"""``/metrics`` renders exactly what prometheus_client's ``generate_latest`` would,
however the series change between scrapes."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)
from prometheus_client import metrics as client_metrics

from rollguard.engine.decision import Decision, Evidence, TriggerResult, TriggerStatus, Verdict
from rollguard.engine.evaluate import Evaluation
from rollguard.engine.state import EngineState
from rollguard.policy.actions import Action, Severity
from rollguard.server.exposition import Exposition
from rollguard.server.telemetry import Telemetry


@pytest.fixture(params=[False, True], ids=["created-off", "created-on"])
def created(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Both ways prometheus_client can be set (``serve`` turns ``_created`` series off)."""
    was = client_metrics._use_created
    if request.param:
        enable_created_metrics()  # type: ignore[no-untyped-call]
    else:
        disable_created_metrics()  # type: ignore[no-untyped-call]
    yield bool(request.param)
    if was:
        enable_created_metrics()  # type: ignore[no-untyped-call]
    else:
        disable_created_metrics()  # type: ignore[no-untyped-call]


def _evaluation(value: float, reference: float | None, limit: float | None) -> Evaluation:
    evidence = Evidence(
        trigger="latency",
        signal="latency_p95_ms",
        value=value,
        limit=limit,
        threshold=30,
        comparison="gt",
        window_seconds=60,
        reference=reference,
        reference_source="stable" if reference is not None else None,
    )
    result = TriggerResult(
        "latency", TriggerStatus.OK, Action.GRADUAL_ROLLBACK, Severity.WARNING, evidence
    )
    decision = Decision(Verdict.CONTINUE, Action.CONTINUE, None, "healthy", Severity.INFO)
    return Evaluation(at=0.0, decision=decision, results=(result,), state=EngineState())


def _same(telemetry: Telemetry) -> str:
    rendered = telemetry.render()
    assert rendered == generate_latest(telemetry.registry)
    return rendered.decode()


def test_a_few_deployments_render_as_generate_latest_does(created: bool) -> None:
    telemetry = Telemetry(CollectorRegistry())
    odd = 'we"ird\\name\nx'  # a label value needing every escape
    for name, value in (("shop", 125.5), ("cart", 1e7), (odd, math.nan)):
        telemetry.observe(name, _evaluation(value, 120.0, 156.0), 0.003)
        telemetry.weight(name, 20)
    telemetry.rolled_back("shop", "immediate_rollback", "error_rate")
    telemetry.unauthorized.labels("abort").inc()
    telemetry.policy_failed("broken.yaml", failed=True)
    text = _same(telemetry)
    assert (
        'rollguard_signal_value{deployment="cart",signal="latency_p95_ms",version="canary"} 1e+07'
        in text
    )
    assert ("_created" in text) is created

    # Scrape again after changes: new values, a new series, a deployment gone.
    telemetry.observe("shop", _evaluation(-0.0, math.inf, -math.inf), 0.2)
    telemetry.observe("api", _evaluation(99.0, None, 150.0), None)
    telemetry.weight("shop", 0)
    telemetry.forget("cart")
    telemetry.policy_failed("broken.yaml", failed=False)
    text = _same(telemetry)
    assert 'deployment="cart",signal' not in text
    assert 'rollguard_trigger_limit{deployment="shop",trigger="latency"} -Inf' in text
    assert _same(telemetry) == text  # nothing changed: the same bytes again
    telemetry.observe("cart", _evaluation(130.0, 120.0, 156.0), 0.01)  # back again
    assert 'deployment="cart",signal="latency_p95_ms",version="canary"} 130.0' in _same(telemetry)


def test_other_collectors_keep_their_place() -> None:
    registry = CollectorRegistry(target_info={"service": "rollguard"})
    Gauge("first_gauge", "Unlabelled, registered first.", registry=registry).set(3)
    Gauge("zone_gauge", "Labelled.", ["zone", "app"], registry=registry).labels("b", "a").set(1)
    assert Exposition(registry).render() == generate_latest(registry)
    plain = CollectorRegistry()
    Gauge("first_gauge", "Unlabelled, registered first.", registry=plain).set(3)
    Gauge("zone_gauge", "Labelled.", ["zone", "app"], registry=plain).labels("b", "a").set(1)
    rendered = Exposition(plain).render()
    assert rendered == generate_latest(plain)
    assert rendered.index(b"first_gauge 3.0") < rendered.index(b'zone_gauge{app="a",zone="b"} 1.0')
