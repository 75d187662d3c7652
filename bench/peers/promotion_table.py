"""The promotion row's table, and how rollguard stands against the issue's goals.

Healthy releases: the time from the release to all the traffic on the new
version, per tool (median over runs; a run that never got there counts as
never). Bad releases: the canary requests served before the traffic was back
on stable (median; a tool that promoted the bad release served canary
requests until the end of the run, a lower bound). Goals (issue 17):
rollguard's healthy time at most 1/3 of each peer's, its exposure at most 1/5.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bench.peers.harness import Case, Outcome
from bench.peers.manifests import ROLLGUARD, TOOLS

Result = tuple[Case, dict[str, Outcome]]
#: rollguard's figure over a peer's, at most: healthy time, bad exposure.
GOALS = {"healthy": 1 / 3, "bad": 1 / 5}


def median(values: Sequence[float]) -> float | None:
    """The lower median (a value some run had); inf counts as never; None for no runs."""
    if not values:
        return None
    return float(np.quantile(np.array(values), 0.5, method="inverted_cdf"))


def _seconds(value: float | None) -> str:
    return "—" if value is None else "never" if math.isinf(value) else f"{value:,.0f} s"


def _count(value: float | None) -> str:
    return "—" if value is None else "never" if math.isinf(value) else f"{value:,.0f}"


def _spread(values: Sequence[float], say: Callable[[float | None], str]) -> str:
    """The median, and every run's value in order when there are a few (at most 5)."""
    middle = say(median(values))
    if 1 < len(values) <= 5 and len(set(values)) > 1:
        return f"{middle} ({', '.join(say(v) for v in sorted(values))})"
    return middle


@dataclass(frozen=True)
class Figures:
    """One scenario and tool over its runs (each run's value; inf: never)."""

    bad: bool
    runs: int
    promoted: int
    to_100s: list[float]
    decideds: list[float]
    draineds: list[float]
    exposeds: list[float]

    @property
    def to_100(self) -> float | None:
        return median(self.to_100s)

    @property
    def exposed(self) -> float | None:
        return median(self.exposeds)


def figures(results: Sequence[Result]) -> dict[tuple[str, str], Figures]:
    """Per (scenario, tool) of the promotion row's runs: the table's figures."""
    groups: dict[tuple[str, str], list[tuple[Case, Outcome]]] = {}
    for case, outcomes in results:
        if not case.config.promotion:
            continue
        for tool in TOOLS:
            groups.setdefault((case.scenario.name, tool), []).append((case, outcomes[tool]))
    found: dict[tuple[str, str], Figures] = {}
    for key, items in groups.items():
        runs = [o for _, o in items]
        found[key] = Figures(
            bad=items[0][0].scenario.fault is not None,
            runs=len(runs),
            promoted=sum(o.promoted for o in runs),
            to_100s=[_never(o.promoted_at) for o in runs],
            decideds=[_never(o.decided) for o in runs],
            draineds=[_never(o.drained) for o in runs],
            exposeds=[o.exposed for o in runs if o.exposed is not None],
        )
    # healthy first, each tool in the order of TOOLS
    return dict(sorted(found.items(), key=lambda i: (i[1].bad, i[0][0], TOOLS.index(i[0][1]))))


def _never(value: float | None) -> float:
    return math.inf if value is None else value


def table(results: Sequence[Result], out: Callable[[str], None]) -> None:
    """One line per scenario and tool, then rollguard against each peer and the goal."""
    found = figures(results)
    if not found:
        return
    out(
        "| scenario | tool | runs | promoted | time to 100%: median (each run) | decided "
        "| traffic on stable | canary requests served |"
    )
    out("|---|---|---:|---:|---:|---:|---:|---:|")
    for (name, tool), f in found.items():
        out(
            f"| {name} | {tool} | {f.runs} | {f.promoted}/{f.runs} "
            f"| {_spread(f.to_100s, _seconds)} | {_spread(f.decideds, _seconds)} "
            f"| {_spread(f.draineds, _seconds)} "
            f"| {_spread(f.exposeds, _count) if f.bad else '—'} |"
        )
    out("")
    for line in against_goals(found):
        out(line)


def against_goals(found: dict[tuple[str, str], Figures]) -> list[str]:
    """rollguard's median over each peer's, healthy time and bad exposure, and the goal."""
    lines = []
    for (name, tool), f in found.items():
        ours = found.get((name, ROLLGUARD))
        if tool == ROLLGUARD or ours is None:
            continue
        kind = "bad" if f.bad else "healthy"
        mine, theirs = (ours.exposed, f.exposed) if f.bad else (ours.to_100, f.to_100)
        if mine is None or theirs is None:
            continue
        figure = "time to 100%" if kind == "healthy" else "canary requests served"
        theirs_name = f"{tool}'" if tool.endswith("s") else f"{tool}'s"
        if math.isinf(theirs):
            lines.append(
                f"- {name}: {tool} never had all the traffic on the new version "
                f"(promoted {f.promoted} of {f.runs}): no ratio"
            )
            continue
        ratio = mine / theirs if theirs else math.inf
        goal = GOALS[kind]
        said = "met" if ratio <= goal else "not met"
        lines.append(
            f"- {name}: rollguard's {figure} / {theirs_name} = {ratio:.2g} "
            f"(goal ≤ {goal:.2f}: {said})"
        )
    return lines
