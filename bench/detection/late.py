"""Late faults: healthy for the first 5 minutes of the canary, bad from then on.

A latent bug, a dependency change or a shift in the traffic mix starts after
the canary has been running for a while, so every sliding window is full of
healthy traffic when the fault begins. Time to detect counts from the onset;
a firing before the onset is a false rollback of that run, and such runs are
left out of the time to detect (they no longer watch anything).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from bench.detection.core import fmt_seconds, median_interval, optimum_requests, wilson
from bench.detection.simulate import Scenario

ONSET_SECONDS = 300.0
AFTER_SECONDS = 600.0  # the time a fault is watched after its onset
RATES = (100.0, 1000.0)
SHARE = 0.2
EFFECTS: list[tuple[str, dict[str, float | str]]] = [
    ("errors 1%->2%", {"fault": "errors", "error_rate": 0.02}),
    ("errors 1%->5%", {"fault": "errors", "error_rate": 0.05}),
    ("errors 1%->10%", {"fault": "errors", "error_rate": 0.10}),
    ("latency +10%", {"fault": "latency", "log_shift": math.log(1.1)}),
    ("latency +30%", {"fault": "latency", "log_shift": math.log(1.3)}),
    ("latency +100%", {"fault": "latency", "log_shift": math.log(2.0)}),
]
ROLLGUARD = "rollguard"
WARMUP_SCRAPES = round(ONSET_SECONDS / 5)


class Outcome:
    """One strategy on one late scenario."""

    def __init__(self, fired: np.ndarray) -> None:
        early = fired <= ONSET_SECONDS
        self.runs = len(fired)
        self.false_rollbacks = int(np.sum(early))
        self.after = fired[~early] - ONSET_SECONDS  # inf: never fired
        self.watched = len(self.after)
        if self.watched:
            self.median = float(np.quantile(self.after, 0.5, method="inverted_cdf"))
            self.p90 = float(np.quantile(self.after, 0.9, method="inverted_cdf"))
            self.detected = float(np.mean(self.after <= AFTER_SECONDS))
        else:
            self.median = self.p90 = math.inf
            self.detected = math.nan
        self.interval = median_interval(self.after)


Found = dict[tuple[str, float, str], Outcome]


def scenarios(runs: int) -> list[tuple[Scenario, int, int]]:
    """The late-onset tasks (scenario, runs, seed)."""
    tasks = []
    seed = 5000
    for label, fault in EFFECTS:
        for rps in RATES:
            seed += 1
            scenario = Scenario(
                label,
                rps,
                SHARE,
                ONSET_SECONDS + AFTER_SECONDS,
                onset_seconds=ONSET_SECONDS,
                **fault,  # type: ignore[arg-type]
            )
            tasks.append((scenario, runs, seed))
    return tasks


def table(
    out: Callable[..., None],
    runs: int,
    mapper: Callable[..., Iterable[dict[str, np.ndarray]]],
    task: Callable[[tuple[Scenario, int, int]], dict[str, np.ndarray]],
) -> Found:
    """Every late-onset scenario and strategy, with rollguard's speed-up over each."""
    out(f"## Late faults (healthy for {ONSET_SECONDS:.0f} s, then bad; seconds after the onset)")
    out()
    out(
        f"{runs} runs per scenario, canary share {SHARE:.0%}. *Median (95% CI)*: over the runs "
        "still watching at the onset, with a distribution-free interval from order statistics. "
        "*Before onset*: runs that fired while the canary was still healthy (false rollbacks). "
        "*Speed-up*: this strategy's median / rollguard's."
    )
    out()
    out(
        "| scenario | rps | strategy | median s (95% CI) | p90 s | detected in 10 min "
        "| false rollbacks before onset | optimum s | speed-up |"
    )
    out("|---|---|---|---|---|---|---|---|---|")
    tasks = scenarios(runs)
    found: Found = {}
    for (scenario, _, _), fired in zip(tasks, mapper(task, tasks), strict=True):
        label, rps = scenario.name, scenario.canary_rps
        best = optimum_requests(scenario)
        outcomes = {name: Outcome(seconds) for name, seconds in fired.items()}
        ours = outcomes[ROLLGUARD].median
        for name, o in outcomes.items():
            found[(label, rps, name)] = o
            low, high = o.interval
            speed = "—" if name == ROLLGUARD else _ratio(o.median, ours)
            detected = "—" if math.isnan(o.detected) else f"{o.detected:.1%}"
            opt = f"{best / rps:.2f}" if best else "—"
            out(
                f"| {label} | {rps:g} | {name} | {fmt_seconds(o.median)} "
                f"({fmt_seconds(low)} - {fmt_seconds(high)}) | {fmt_seconds(o.p90)} "
                f"| {detected} | {o.false_rollbacks}/{o.runs} | {opt} | {speed} |"
            )
    return found


def _ratio(theirs: float, ours: float) -> str:
    if math.isinf(ours):
        return "—"
    if math.isinf(theirs):
        return "only rollguard detects"
    return f"{theirs / ours:.1f}x"


def summary(out: Callable[..., None], found: Found) -> None:
    """Per strategy: rollguard's median speed-up over the late-onset scenarios."""
    out("## Late faults: rollguard's speed-up per strategy")
    out()
    out(
        "| strategy | median speed-up | smallest | scenarios both detect "
        "| only rollguard detects | false rollbacks before onset (95% CI) |"
    )
    out("|---|---|---|---|---|---|")
    for name in dict.fromkeys(name for _, _, name in found):
        ratios: list[float] = []
        only = 0
        hits = n = 0
        for (label, rps, other), o in found.items():
            if other != name:
                continue
            hits, n = hits + o.false_rollbacks, n + o.runs
            ours = found[(label, rps, ROLLGUARD)].median
            if math.isinf(ours):
                continue
            if math.isinf(o.median):
                only += 1
            else:
                ratios.append(o.median / ours)
        low, high = wilson(hits, n)
        fr = f"{hits}/{n} = {hits / n:.2%} ({low:.2%} - {high:.2%})"
        if name == ROLLGUARD:
            out(f"| {name} | — | — | — | — | {fr} |")
            continue
        med = f"{np.median(ratios):.1f}x" if ratios else "—"
        small = f"{min(ratios):.1f}x" if ratios else "—"
        out(f"| {name} | {med} | {small} | {len(ratios)} | {only} | {fr} |")
