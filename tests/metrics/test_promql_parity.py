"""Our Prometheus maths against Prometheus' own engine, through ``promtool test rules``.

Each case loads a series into promtool's PromQL engine and asks for
``increase``, ``rate`` or ``histogram_quantile``; every expectation is set to
an impossible value so promtool reports what Prometheus computed, and that is
compared with :mod:`rollguard.metrics.series`. (Prometheus 2.42 here closes
range windows at the start; no case puts a sample exactly there.)
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from rollguard.metrics import series
from support import require_binary

pytestmark = pytest.mark.real_server
STEP_SECONDS = 10
IMPOSSIBLE = -12345.0


@dataclass(frozen=True)
class CounterCase:
    values: str  # promtool notation, one sample every STEP_SECONDS from t=0, "_" = none
    eval_seconds: int
    range_seconds: int

    def points(self) -> list[series.Point]:
        return [
            series.Point(float(i * STEP_SECONDS), float(raw))
            for i, raw in enumerate(self.values.split())
            if raw != "_"
        ]


COUNTERS = [
    CounterCase("10 20 30 5 15 25", 55, 50),  # a reset, samples near both edges
    CounterCase("10 20 30 5 15 25", 60, 55),  # 10 s to the end: still "near"
    CounterCase("0 1 11 21", 35, 33),  # zero point closer than the start edge
    CounterCase("_ _ _ _ 0 10 20 _ _ _ _", 100, 95),  # series inside the range only
    CounterCase("0 10 0 4 2", 45, 42),  # two resets
    CounterCase("_ _ 5", 25, 10),  # one sample: no value
    CounterCase("3 3 3 3", 35, 30),  # flat
]

HISTOGRAMS: list[dict[float, float]] = [
    {0.1: 10.0, 0.5: 30.0, 1.0: 38.0, math.inf: 40.0},
    {0.1: 10.0, 0.5: 8.0, 1.0: 20.0, math.inf: 20.0},  # not monotonic
    {0.0: 5.0, 1.0: 10.0, math.inf: 10.0},  # lowest bound 0
    {0.1: 5.0, 1.0: 10.0},  # no +Inf
    {math.inf: 10.0},  # one bucket
    {0.1: 0.0, math.inf: 0.0},  # no observations
]
QUANTILES = (0.05, 0.5, 0.9, 0.95, 0.99)


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def _test_file(directory: Path) -> tuple[Path, dict[str, float | None]]:
    """The promtool unit-test file, and what we compute for each expression."""
    ours: dict[str, float | None] = {}
    groups = []
    for index, case in enumerate(COUNTERS):
        name = f"c{index}"
        start = case.eval_seconds - case.range_seconds
        inside = series.in_window(case.points(), start=start, end=case.eval_seconds)
        increase = f"increase({name}[{case.range_seconds}s])"
        rate = f"rate({name}[{case.range_seconds}s])"
        ours[increase] = series.increase(inside, start=start, end=case.eval_seconds)
        ours[rate] = series.rate(inside, start=start, end=case.eval_seconds)
        groups.append(
            {
                "interval": f"{STEP_SECONDS}s",
                "input_series": [{"series": name, "values": case.values}],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": f"{case.eval_seconds}s",
                        "exp_samples": [{"labels": "{}", "value": IMPOSSIBLE}],
                    }
                    for expr in (increase, rate)
                ],
            }
        )
    for index, buckets in enumerate(HISTOGRAMS):
        name = f"h{index}_bucket"
        tests = []
        for q in QUANTILES:
            expr = f"histogram_quantile({q}, {name})"
            ours[expr] = series.histogram_quantile(q, buckets)
            tests.append(
                {
                    "expr": expr,
                    "eval_time": "0s",
                    "exp_samples": [{"labels": "{}", "value": IMPOSSIBLE}],
                }
            )
        groups.append(
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'{name}{{le="{_le(bound)}"}}', "values": f"{count:g}"}
                    for bound, count in buckets.items()
                ],
                "promql_expr_test": tests,
            }
        )
    path = directory / "parity_test.yml"
    document = {"evaluation_interval": "1s", "tests": groups}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path, ours


_RESULT = re.compile(r'expr: "(?P<expr>.+?)", time: .*?\n\s*exp: .*?\n\s*got: (?P<got>.*)')


def _prometheus_results(promtool: Path, path: Path) -> dict[str, float | None]:
    run = subprocess.run(
        [str(promtool), "test", "rules", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = run.stdout + run.stderr
    results: dict[str, float | None] = {}
    for match in _RESULT.finditer(output):
        got = match["got"].strip()
        results[match["expr"]] = None if got == "nil" else float(got.rsplit(" ", 1)[-1])
    assert results, output
    return results


def test_increase_rate_and_histogram_quantile_match_prometheus(tmp_path: Path) -> None:
    promtool = require_binary("promtool", hint="apt-get install prometheus")
    path, ours = _test_file(tmp_path)
    theirs = _prometheus_results(promtool, path)
    assert set(theirs) == set(ours)
    for expr, expected in theirs.items():
        computed = ours[expr]
        if expected is None or computed is None:
            assert computed is expected, expr
        elif math.isnan(expected):
            assert math.isnan(computed), expr
        else:
            assert computed == pytest.approx(expected, rel=1e-12, abs=1e-12), expr
