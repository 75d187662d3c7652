"""Faults that begin 1, 5 or 30 minutes into the canary: the e-detector against the mixture.

Each late scenario runs the example policy's sequential triggers twice on the
same scrapes: with ``detector: e-detector`` (the policy as shipped) and with
the change-point mixture rollguard used before (``detector: mixture``). Time
to detect and canary requests count from the onset (the first scrape after
it ends 5 s later, so 5 s is the floor); a firing before the onset is a false
rollback of that run, left out of the time to detect.

The yardsticks, per canary request (``optimum.py``):

- *Wald, known onset*: the SPRT that knows when the fault began, literal
  (known baseline, exact latencies, no tolerance) and tolerated (what the
  policy's tolerance leaves to detect);
- *Lorden*: ``log(1/alpha) / KL``, the issue's form of the best delay for an
  unknown onset (a detector whose average run to a false alarm is 1/alpha
  updates), at the trigger's alpha and the literal KL;
- *Lorden, 60-minute watch*: ``log(K/alpha) / KL`` with the tolerated KL: a
  detector that keeps its false alarms below alpha over ``K`` updates behaves
  like one whose average run is ``K / alpha``; no detector with the policy's
  tolerance and guarantee is expected to beat it by much on average.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from bench.detection import finegrained
from bench.detection.core import fmt_seconds, wilson
from bench.detection.optimum import WALD_A, literal_kl, optima
from bench.detection.simulate import SCRAPE_SECONDS, SIGMA, Scenario, scrapes
from bench.detection.strategies import ERRORS, LATENCY, ROLLGUARDS, Rollguard, RollguardMixture
from rollguard.engine import change_point

ONSET_MINUTES = (1, 5, 30)
AFTER_SECONDS = 600.0  # how long a fault is watched after its onset
RATES = (10.0, 100.0, 1000.0)
SHARES = (0.05, 0.2, 0.5)
EFFECTS: list[tuple[str, dict[str, float | str]]] = [
    ("errors 1%->5%", {"fault": "errors", "error_rate": 0.05}),
    ("errors 1%->10%", {"fault": "errors", "error_rate": 0.10}),
    ("latency +0.25sd", {"fault": "latency", "log_shift": 0.25 * SIGMA}),
]
NEW, OLD = Rollguard.name, RollguardMixture.name
WATCH_UPDATES = round(3600 / SCRAPE_SECONDS)  # the 60-minute watch of the goals


Task = tuple[Scenario, int, int]
Fired = dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (seconds, requests) after onset


def simulate(task: Task) -> Fired:
    """Per run and strategy: seconds and canary requests from the onset to the first
    firing (inf: never; a negative number of seconds: fired before the onset)."""
    scenario, runs, seed = task
    rng = np.random.default_rng(seed)
    strategies = [cls(runs) for cls in ROLLGUARDS]
    seconds = {s.name: np.full(runs, np.inf) for s in strategies}
    requests = {s.name: np.full(runs, np.inf) for s in strategies}
    since_onset = np.zeros(runs)
    for scrape in scrapes(scenario, runs, rng):
        start = scrape.t * SCRAPE_SECONDS
        if start >= scenario.onset_seconds:
            since_onset += scrape.canary_requests
        for strategy in strategies:
            first = seconds[strategy.name]
            new = strategy.step(scrape) & np.isinf(first)
            first[new] = start + SCRAPE_SECONDS - scenario.onset_seconds
            requests[strategy.name][new] = since_onset[new]
        if all(np.all(np.isfinite(v)) for v in seconds.values()):
            break
    return {name: (seconds[name], requests[name]) for name in seconds}


def tasks(runs: int) -> list[Task]:
    """Every late scenario: effect x canary rate x share x onset."""
    out = []
    seed = 7000
    for label, fault in EFFECTS:
        for rps in RATES:
            for share in SHARES:
                for minutes in ONSET_MINUTES:
                    seed += 1
                    onset = 60.0 * minutes
                    scenario = Scenario(
                        label,
                        rps,
                        share,
                        onset + AFTER_SECONDS,
                        onset_seconds=onset,
                        **fault,  # type: ignore[arg-type]
                    )
                    out.append((scenario, runs, seed))
    return out


@dataclass(frozen=True)
class Outcome:
    """One detector on one late scenario."""

    runs: int
    early: int  # false rollbacks before the onset
    median_s: float
    p90_s: float
    median_requests: float
    p90_requests: float

    @classmethod
    def of(cls, seconds: np.ndarray, requests: np.ndarray) -> Outcome:
        watched = seconds > 0
        after, used = seconds[watched], requests[watched]

        def q(values: np.ndarray, level: float) -> float:
            if not len(values):
                return math.inf
            return float(np.quantile(values, level, method="inverted_cdf"))

        return cls(
            len(seconds),
            int(np.sum(~watched)),
            q(after, 0.5),
            q(after, 0.9),
            q(used, 0.5),
            q(used, 0.9),
        )


Key = tuple[str, float, float, int]  # (effect, rps, share, onset minutes)


def run(mapper: Callable[..., Iterable[Fired]], runs: int) -> dict[Key, dict[str, Outcome]]:
    """Simulate every late scenario; the outcomes per detector."""
    found: dict[Key, dict[str, Outcome]] = {}
    todo = tasks(runs)
    for (scenario, _, _), fired in zip(todo, mapper(simulate, todo), strict=True):
        key = (
            scenario.name,
            scenario.canary_rps,
            scenario.share,
            round(scenario.onset_seconds / 60),
        )
        found[key] = {name: Outcome.of(*pair) for name, pair in fired.items()}
    return found


@dataclass(frozen=True)
class Yardsticks:
    """Canary requests, per (effect, share)."""

    wald_literal: float
    wald_tolerated: float
    lorden: float
    lorden_watch: float


def yardsticks(label: str, share: float) -> Yardsticks:
    kind, effect = finegrained.kind_effect(label)
    tol = ERRORS if kind == "errors" else LATENCY
    best = optima(kind, effect, share, "stable", ratio=tol.ratio, fraction=tol.fraction)
    tolerated_kl = WALD_A / best["tolerated"]
    return Yardsticks(
        wald_literal=best["literal"],
        wald_tolerated=best["tolerated"],
        lorden=math.log(1 / tol.alpha) / literal_kl(kind, effect),
        lorden_watch=math.log(WATCH_UPDATES / tol.alpha) / tolerated_kl,
    )


def goal_limit(label: str, share: float, rps: float) -> float:
    """Seconds: 3 x the known-onset optimum, or the optimum plus one analysis interval
    where the interval dominates (the first scrape after the onset ends 5 s in)."""
    best = yardsticks(label, share).wald_literal / rps
    return max(3 * best, best + SCRAPE_SECONDS)


def scraped_limit(label: str, share: float, rps: float) -> float:
    """The same goal with the optimum rounded up to the scrape at which a test that knew
    the onset could fire: one interval after that scrape."""
    best = yardsticks(label, share).wald_literal / rps
    return max(3 * best, SCRAPE_SECONDS * math.ceil(best / SCRAPE_SECONDS) + SCRAPE_SECONDS)


def lorden_seconds(label: str, share: float, rps: float) -> float:
    """Lorden's bound for the policy's guarantee over a 60-minute watch, in seconds."""
    return yardsticks(label, share).lorden_watch / rps


def verdict(median: float, label: str, share: float, rps: float) -> str:
    """``met``, ``met (scrape)`` (only with the optimum rounded up to its scrape), or
    ``not met``; ``, goal < Lorden`` when the goal is below the 60-minute Lorden bound."""
    if median <= goal_limit(label, share, rps):
        word = "met"
    elif median <= scraped_limit(label, share, rps):
        word = "met (scrape)"
    else:
        word = "not met"
    if lorden_seconds(label, share, rps) > goal_limit(label, share, rps):
        word += ", goal < Lorden"
    return word


def seconds_table(out: Callable[..., None], found: dict[Key, dict[str, Outcome]]) -> None:
    """Every late scenario: both detectors, seconds and requests, against the yardsticks."""
    out("## Late faults: e-detector vs mixture (onset 1, 5, 30 minutes)")
    out()
    out(
        "Seconds and canary requests from the onset to the first firing, median / p90 "
        "over the runs still watching at the onset. *Wald s*: the known-onset optimum "
        "(literal: known baseline, exact latencies, no tolerance), in seconds at this rate. "
        "*Lorden s*: log(K/alpha)/KL with the tolerated KL and K = 720 updates (60 minutes), "
        "the best average delay for a detector with the policy's tolerance and guarantee. "
        "*Goal s*: max(3 x Wald, Wald + one 5 s interval); *met (scrape)*: met only with "
        "Wald rounded up to the scrape it could fire at; *goal < Lorden*: no detector with "
        "the guarantee is expected to meet it. *Before onset*: runs that fired while the "
        "canary was healthy."
    )
    out()
    out(
        "| effect | rps | share | onset min | e-detector s | mixture s | e-detector requests "
        "| mixture requests | Wald s | Lorden s | goal s | e-detector goal | mixture goal "
        "| before onset (new / old) |"
    )
    out("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (label, rps, share, minutes), pair in found.items():
        new, old = pair[NEW], pair[OLD]
        wald = yardsticks(label, share).wald_literal / rps
        out(
            f"| {label} | {rps:g} | {share:.0%} | {minutes} "
            f"| {_pair(new.median_s, new.p90_s)} | {_pair(old.median_s, old.p90_s)} "
            f"| {_pair(new.median_requests, new.p90_requests)} "
            f"| {_pair(old.median_requests, old.p90_requests)} "
            f"| {wald:.2f} | {lorden_seconds(label, share, rps):.1f} "
            f"| {goal_limit(label, share, rps):.1f} "
            f"| {verdict(new.median_s, label, share, rps)} "
            f"| {verdict(old.median_s, label, share, rps)} "
            f"| {new.early} / {old.early} of {new.runs} |"
        )


def _pair(median: float, p90: float) -> str:
    return f"{fmt_seconds(median)} / {fmt_seconds(p90)}"


def requests_table(
    out: Callable[..., None], fine: dict[int, dict[finegrained.Key, finegrained.Detected]]
) -> None:
    """Canary requests free of the scrape's rounding, per onset, with the nats each pays."""
    out("## Late faults: canary requests to detect, free of the scrape's rounding")
    out()
    out(
        "Healthy 5 s updates at 100 canary requests/s until the onset, then bad requests "
        "in batches of a fiftieth of the literal optimum. *Onset nats*: what not knowing the "
        "start costs, log(1/w_k). *Effect nats*: median, at the firing, of log(best single "
        "alternative) - log(e-value): what not knowing the effect size (and, for latency, "
        "which bucket) cost. Yardsticks in requests: Wald literal / tolerated (known onset), "
        "Lorden log(1/alpha)/KL, and log(K/alpha)/KL_tolerated for a 60-minute watch."
    )
    out()
    out(
        "| effect | share | onset min | detector | median requests | p90 | / Wald literal "
        "| / Wald tolerated | / Lorden | / Lorden 60 min | onset nats | effect nats |"
    )
    out("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for minutes, cells in fine.items():
        index = minutes * round(60 / SCRAPE_SECONDS) + 1
        for (label, share, name), found in cells.items():
            if name == finegrained.BASELINE:
                continue
            sticks = yardsticks(label, share)
            tol = ERRORS if label.startswith("errors") else LATENCY
            onset = float(change_point.onset_cost(index, tol.horizon if name == NEW else None))
            ratios = " | ".join(
                f"{found.median / best:.2f}x"
                for best in (
                    sticks.wald_literal,
                    sticks.wald_tolerated,
                    sticks.lorden,
                    sticks.lorden_watch,
                )
            )
            out(
                f"| {label} | {share:.0%} | {minutes} | {name} | {found.median:.0f} "
                f"| {found.p90:.0f} | {ratios} | {onset:.1f} | {found.grid_nats:.2f} |"
            )


def measure_requests(
    mapper: Callable[..., Iterable[dict[str, finegrained.Detected]]], quick: bool
) -> dict[int, dict[finegrained.Key, finegrained.Detected]]:
    """The small-batch runs after 1, 5 and 30 minutes of healthy updates."""
    effects = [e for e in finegrained.EFFECTS if e[0] in dict(EFFECTS)]
    return {
        minutes: finegrained.measure(
            mapper,
            quick=quick,
            warmup=minutes * round(60 / SCRAPE_SECONDS),
            effects=effects,
            shares=SHARES,
        )
        for minutes in ONSET_MINUTES
    }


def goals(
    out: Callable[..., None],
    found: dict[Key, dict[str, Outcome]],
    healthy: dict[str, tuple[int, int]],
) -> None:
    """The issue's goals for late faults, counted over the cells."""
    out("## Goals: late faults")
    out()
    for rps in RATES:
        for name in (NEW, OLD):
            cells = [(k, v[name]) for k, v in found.items() if k[1] == rps]
            words = [verdict(o.median_s, k[0], k[2], rps) for k, o in cells]
            met = sum(w.startswith("met") and "scrape" not in w for w in words)
            scraped = sum(w.startswith("met (scrape)") for w in words)
            below = sum("Lorden" in w for w in words)
            out(
                f"- {name} at {rps:g} canary requests/s: median time to detect within the goal "
                f"in {met} of {len(cells)} late cells (3 effects x 3 shares x 3 onsets), "
                f"{met + scraped} with the optimum rounded up to its scrape; in {below} the "
                "goal is below Lorden's bound."
            )
    for name, (hits, n) in healthy.items():
        low, high = wilson(hits, n)
        out(
            f"- {name}: false rollbacks over 60-minute healthy watches {hits}/{n} = "
            f"{hits / n:.2%} (95% {low:.2%} - {high:.2%}); goal <= 1%."
        )
    early = {name: sum(v[name].early for v in found.values()) for name in (NEW, OLD)}
    total = sum(v[NEW].runs for v in found.values())
    out(
        f"- Rolled back before the onset (late runs): e-detector {early[NEW]}/{total}, "
        f"mixture {early[OLD]}/{total}."
    )
