"""Batched queries against a real Prometheus scraping a synthetic fleet.

The same deployments are measured per deployment (:class:`PrometheusProvider`)
and in batches (:class:`QueryBatcher`) at the same instant, so every number and
every engine decision must be the same; the queries Prometheus itself counted
show that batches grow with the number of shapes, not of deployments.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rollguard import documents, signals
from rollguard.engine.decision import Decision, Verdict
from rollguard.engine.evaluate import evaluate, required_queries
from rollguard.engine.state import EngineState
from rollguard.metrics import query_counts
from rollguard.metrics.batching import QueryBatcher
from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.metrics.shapes import Shape, batchable, parse_selector
from rollguard.policy.actions import Action
from rollguard.policy.load import parse_policy
from rollguard.policy.model import Policy, PrometheusSource
from rollguard.signals import Measurement, Phase, Query
from servers.fleet import BAD_CANARY, FleetExporter, Member, Version, running_fleet
from servers.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from support import wait_until

pytestmark = pytest.mark.real_server
INTERVAL = 2.0
ROUNDS = 3

SLOW = Version(slow_share=0.5)
#: Label values that are regex or PromQL syntax: escaped, each must match only itself.
HOSTILE = ("a|b", ".*", "c.d", "cxd", 'q"uote', "back\\slash", "new\nline", "ü", "x)(y")
MEMBERS = [
    Member("shop", "cart"),
    Member("shop", "pay", canary=BAD_CANARY),
    Member("shop", "search", canary=SLOW),
    Member("other", "cart", canary=BAD_CANARY),  # same name, other namespace: its own
    *(
        Member("hostile", name, canary=BAD_CANARY if name in (".*", "c.d") else Version())
        for name in HOSTILE
    ),
]
GHOST = Member("shop", "gone")  # has a policy, exports nothing


@dataclass(frozen=True)
class Fleet:
    exporter: FleetExporter
    prometheus: PrometheusServer
    at: float  # a scrape's time: every mode measures at this instant


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with running_fleet(MEMBERS) as exporter:
        target = ScrapeTarget(exporter.address, {}, job="fleet")
        with running_prometheus(tmp_path_factory.mktemp("prometheus"), [target]) as prometheus:
            needed = 10 + ROUNDS * INTERVAL + 4  # the window before the first round, and slack
            wait_until(
                lambda: (prometheus.value('count_over_time(up{job="fleet"}[1h])') or 0) >= needed,
                timeout=90,
                interval=0.5,
                what=f"{needed:g} scrapes of the fleet",
            )
            at = prometheus.value('timestamp(up{job="fleet"})')
            assert at is not None
            yield Fleet(exporter, prometheus, at)


def _promql_string(value: str) -> str:
    """A PromQL string literal written independently of rollguard's (JSON's escapes)."""
    return json.dumps(value, ensure_ascii=False)


def _policy(url: str, member: Member, index: int) -> Policy:
    def selector(version: str) -> str:
        return (
            f"namespace={_promql_string(member.namespace)},"
            f"deployment={_promql_string(member.deployment)},version={_promql_string(version)}"
        )

    document = {
        "target": {"deployment": f"member-{index}", "executor": {"type": "noop"}},
        "metrics": {
            "provider": "prometheus",
            "address": url,
            "stable_selector": selector("stable"),
            "canary_selector": selector("canary"),
        },
        "analysis": {"interval": f"{INTERVAL:g}s"},
        "baseline": {"compare_with": "stable"},
        "error_rate_trigger": {
            "threshold": "5%",
            "measurement_window": "10s",
            "action": "immediate_rollback",
        },
        "latency_trigger": {
            "threshold": "30% increase from baseline",
            "measurement_window": "10s",
            "action": "gradual_rollback",
            "detection": {"method": "sequential", "tolerance_ratio": 1.0, "tolerance_points": 1.0},
        },
    }
    return parse_policy(json.dumps(document, ensure_ascii=False), source=f"member-{index}")


@dataclass
class Round:
    measured: list[dict[Query, Measurement]]
    decisions: list[Decision]


def _run(
    policies: Sequence[Policy], at: float, *, batched: bool, batcher: QueryBatcher | None = None
) -> list[Round]:
    """``ROUNDS`` evaluations of every policy, ending at ``at``, one interval apart."""

    async def go() -> list[Round]:
        nonlocal batcher
        batcher = batcher or QueryBatcher()
        providers = [
            batcher.provider(_source(p)) if batched else PrometheusProvider(_source(p))
            for p in policies
        ]
        states = [EngineState() for _ in policies]
        rounds = []
        try:
            for step in range(ROUNDS):
                now = at - (ROUNDS - 1 - step) * INTERVAL
                queries = [required_queries(p) for p in policies]
                answers = await asyncio.gather(
                    *(pr.measure(q, now=now) for pr, q in zip(providers, queries, strict=True))
                )
                measured = [
                    dict(zip(q, a, strict=True)) for q, a in zip(queries, answers, strict=True)
                ]
                decisions = []
                for index, policy in enumerate(policies):
                    evaluation = evaluate(
                        policy, measured[index], baseline=None, state=states[index], now=now
                    )
                    states[index] = evaluation.state
                    decisions.append(evaluation.decision)
                rounds.append(Round(measured, decisions))
        finally:
            for provider in providers:
                await provider.aclose()
        return rounds

    return asyncio.run(go())


def _source(policy: Policy) -> PrometheusSource:
    assert isinstance(policy.metrics, PrometheusSource)
    return policy.metrics


def _facts(m: Measurement) -> tuple[object, ...]:
    return (m.phase, m.value, m.requests, dict(m.buckets), m.reason)


def _shape_keys(policies: Sequence[Policy]) -> dict[Shape, set[tuple[str, ...]]]:
    """Every shape the policies' queries are batched in, with the keys asked in it."""
    keys: dict[Shape, set[tuple[str, ...]]] = defaultdict(set)
    for policy in policies:
        for query in required_queries(policy):
            found = batchable(query, _source(policy))
            assert not isinstance(found, str), found
            for keyed in found.asked.values():
                keys[keyed.shape].add(keyed.key)
    return keys


def test_batched_and_per_deployment_decide_the_same(fleet: Fleet) -> None:
    members = [*MEMBERS, GHOST]
    policies = [_policy(fleet.prometheus.url, m, i) for i, m in enumerate(members)]
    alone = _run(policies, fleet.at, batched=False)
    together = _run(policies, fleet.at, batched=True)
    for one, other in zip(alone, together, strict=True):
        for index, member in enumerate(members):
            mine, theirs = one.measured[index], other.measured[index]
            assert {q: _facts(m) for q, m in mine.items()} == {
                q: _facts(m) for q, m in theirs.items()
            }, member
            assert one.decisions[index] == other.decisions[index], member

    first = together[0]
    for index, member in enumerate(members):
        phases = {m.phase for m in first.measured[index].values()}
        decided = [one.decisions[index] for one in together]
        if member is GHOST:  # no data for it alone: never zero, never the others'
            assert phases == {Phase.NO_DATA}
            assert all(d.verdict is not Verdict.ACT for d in decided)
            continue
        assert phases == {Phase.OK}, (member, first.measured[index])
        if member.canary is BAD_CANARY:  # a fifth of its requests fail, half are slow
            assert any(d.verdict is Verdict.ACT for d in decided), (member, decided)
        elif member.canary is SLOW:  # judged by the sequential latency test
            assert any(d.action is Action.GRADUAL_ROLLBACK for d in decided), (member, decided)
        else:
            assert all(d.verdict is Verdict.CONTINUE for d in decided), (member, decided)


def test_queries_grow_with_shapes_not_deployments(fleet: Fleet) -> None:
    healthy = [m for m in MEMBERS if m.canary is not BAD_CANARY]
    few = [_policy(fleet.prometheus.url, m, i) for i, m in enumerate(healthy[:2])]
    many = [_policy(fleet.prometheus.url, m, i) for i, m in enumerate(MEMBERS)]
    queries = required_queries(many[0])
    shapes: set[Shape] = set()
    for query in queries:
        found = batchable(query, _source(many[0]))
        assert not isinstance(found, str), found
        shapes.update(k.shape for k in found.asked.values())

    def batched(policies: list[Policy]) -> int:
        return fleet.prometheus.count_queries(lambda: _run(policies, fleet.at, batched=True))

    def alone(policies: list[Policy]) -> int:
        return fleet.prometheus.count_queries(lambda: _run(policies, fleet.at, batched=False))

    assert batched(few) == batched(many) == ROUNDS * len(shapes)
    per_deployment = alone(few)
    assert per_deployment > batched(few)
    assert alone(many) == per_deployment * len(many) // len(few)


def test_the_batchers_counts_are_exposed_as_metrics(fleet: Fleet) -> None:
    """What serve's and the controller's /metrics show, read after real batched rounds."""
    policies = [_policy(fleet.prometheus.url, m, i) for i, m in enumerate(MEMBERS)]
    keys = _shape_keys(policies)
    batcher = QueryBatcher()
    registry = CollectorRegistry()
    query_counts.register(registry, batcher, prefix="rollguard")

    counted = fleet.prometheus.count_queries(
        lambda: _run(policies, fleet.at, batched=True, batcher=batcher)
    )

    exposed = text_string_to_metric_families(generate_latest(registry).decode())
    samples = {
        (sample.name, tuple(sample.labels.items())): sample.value
        for family in exposed
        for sample in family.samples
    }
    batched = samples[("rollguard_prometheus_queries_total", (("mode", "batched"),))]
    assert batched == counted == ROUNDS * len(keys)  # as Prometheus itself counted them
    assert samples[("rollguard_prometheus_queries_total", (("mode", "single"),))] == 0
    deployments = samples[("rollguard_prometheus_query_deployments_total", ())]
    assert deployments == ROUNDS * sum(len(asked) for asked in keys.values())
    assert deployments / batched >= len(MEMBERS)  # every member in each query


def test_an_answer_past_the_size_limit_is_asked_in_halves(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raw samples come one series per status code or bucket: a batch may outgrow the
    answer limit, and is then asked again for fewer deployments, with the same results."""
    policies = [_policy(fleet.prometheus.url, m, i) for i, m in enumerate(MEMBERS)]
    keys = _shape_keys(policies)
    sizes = {
        shape: len(
            httpx.get(
                f"{fleet.prometheus.url}/api/v1/query",
                params={"query": shape.expression(asked), "time": fleet.at},
                timeout=10,
            ).content
        )
        for shape, asked in keys.items()
    }
    alone = _run(policies, fleet.at, batched=False)
    limit = max(sizes.values()) // 2  # the largest batch no longer fits; a deployment does
    monkeypatch.setattr(documents, "MAX_ANSWER_BYTES", limit)
    batcher = QueryBatcher()
    together = _run(policies, fleet.at, batched=True, batcher=batcher)
    for one, other in zip(alone, together, strict=True):
        for index, member in enumerate(MEMBERS):
            assert {m.phase for m in other.measured[index].values()} == {Phase.OK}, member
            assert {q: _facts(m) for q, m in one.measured[index].items()} == {
                q: _facts(m) for q, m in other.measured[index].items()
            }, member
    too_large = sum(size > limit for size in sizes.values())
    assert too_large >= 1
    # each batch past the limit was asked at least twice more (its halves)
    assert batcher.sent >= ROUNDS * (len(keys) + 2 * too_large)


def test_hostile_label_values_match_only_themselves(fleet: Fleet) -> None:
    """The batched query for some deployments returns their series and no one else's."""
    asked = ["c.d", ".*", "a|b", 'q"uote', "back\\slash", "new\nline", "x)(y"]
    policies = [
        _policy(fleet.prometheus.url, Member("hostile", name), i) for i, name in enumerate(asked)
    ]
    shape = None
    keys = []
    for policy in policies:
        found = batchable(
            Query(signals.Signal.REQUESTS, signals.Version.CANARY, 10.0), _source(policy)
        )
        assert not isinstance(found, str), found
        [keyed, *_] = found.asked.values()  # the raw samples in the window
        shape = keyed.shape
        keys.append(keyed.key)
    assert shape is not None
    assert shape.ranged
    expression = shape.expression(keys)
    answered = fleet.prometheus.query(expression)
    got = sorted({str(series["metric"]["deployment"]) for series in answered})  # type: ignore[index]
    assert got == sorted(asked)  # "cxd", "ü" and the shop's are not matched by ".*" or "c.d"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ('deployment="a",version="canary"', [("deployment", "=", "a"), ("version", "=", "canary")]),
        (
            "{ deployment = 'a\\'b' , code!~`5..`, }",
            [("deployment", "=", "a'b"), ("code", "!~", "5..")],
        ),
        ('deployment="new\\nline"', [("deployment", "=", "new\nline")]),
    ],
)
def test_selectors_are_read_as_matchers(
    selector: str, expected: list[tuple[str, str, str]]
) -> None:
    found = parse_selector(selector)
    assert found is not None
    assert [(m.label, m.op, m.value) for m in found] == expected


@pytest.mark.parametrize(
    "selector",
    [
        'deployment="a" or vector(1)',
        'deployment="\\x41"',
        "deployment=a",
        'deployment="a",,version="b"',
    ],
)
def test_other_selectors_are_asked_per_deployment(selector: str) -> None:
    source = PrometheusSource.model_validate(
        {"address": "http://127.0.0.1:9", "canary_selector": selector}
    )
    found = batchable(
        Query(signals.Signal.ERROR_RATE_PERCENT, signals.Version.CANARY, 60.0), source
    )
    assert isinstance(found, str)
    assert "label matchers" in found
