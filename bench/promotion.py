"""Progressive delivery: time to promote a healthy release, users exposed to a bad one.

Simulates, every 5 s scrape, a service of 200 requests/s (so 10/s reach the
canary at its first 5 % step) with binomial request and error counts, and runs
rollguard's promotion (the very kernels of ``rollguard.engine.promotion`` and
the rollback test of ``rollguard.engine.sequential``) against fixed-interval
stepping as the peers' docs configure it:

- Flagger (canary analysis docs): interval 1m, stepWeight 10, maxWeight 50,
  threshold 5, request-success-rate >= 99 % over 1m; promotion after the
  check at maxWeight.
- Argo Rollouts (canary docs' steps with pauses): setWeight 20, 40, 60, 80,
  each paused 1m, analysis interval 1m, failureLimit 3, error rate < 5 %.

Healthy: 1 % errors on both. Bad: canary 2 % (the issue's "errors 1 % -> 2 %"),
from the start, or from the 3rd step on (a fault that comes mid-promotion;
also run with the promotion evidence kept across steps, as rollguard did before
each step became its own test).
``--step-beta`` adds rows for the promotion's ``step_beta`` (steps before the
last at a looser bound, the last checking the evidence since every step began).
Run: ``python bench/promotion.py [--runs N] [--step-beta B --min-step S]``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import special

from rollguard.engine import promotion, sequential

SCRAPE = 5.0
RATE = 200.0
HORIZON = 30 * 60  # seconds simulated
STEPS = np.array([5, 10, 25, 50, 100])
MIN_STEP, BETA = 30.0, 0.01
ALPHA, TOLERANCE_RATIO, TOLERANCE_POINTS = 0.01, 1.2, 0.1


def rollguard(
    runs: int,
    p_canary: float,
    rng: np.random.Generator,
    margin: float,
    *,
    fault_step: int = 0,
    carry: bool = False,
    step_beta: float | None = None,
    min_step: float = MIN_STEP,
) -> dict[str, float]:
    """Sequential promotion with the rollback test beside it; figures over ``runs``.

    The canary's error rate is ``p_canary`` from step ``fault_step`` (0-based) on,
    1 % before; users exposed count the canary requests served from then on.
    ``carry`` keeps the promotion evidence across steps (rollguard before each step
    was its own test), to show what that let through. ``step_beta``: steps before
    the last move on at ``1 / step_beta``; the last needs the e-process begun at
    every step (``since``, fed ever since) at ``1 / BETA``, as the engine does.
    """
    index = np.zeros(runs, dtype=int)
    since = np.zeros(runs)
    done_at = np.full(runs, np.nan)  # promoted
    rolled_at = np.full(runs, np.nan)
    exposed = np.zeros(runs)
    promote = np.zeros((runs, promotion.PHI_DOWN.size))
    begun = np.zeros((runs, len(STEPS) - 1, promotion.PHI_DOWN.size))  # one a step
    rollback: np.ndarray | None = None
    for tick in range(1, int(HORIZON / SCRAPE) + 1):
        now = tick * SCRAPE
        live = np.isnan(done_at) & np.isnan(rolled_at)
        serving = np.isnan(rolled_at)  # a promoted release keeps serving all its traffic
        total = rng.poisson(RATE * SCRAPE, runs)
        n_c = rng.binomial(total, STEPS[index] / 100.0)
        n_s = np.maximum(total - n_c, 1)
        faulty = index >= fault_step
        x_c = rng.binomial(n_c, np.where(faulty, p_canary, 0.01)).astype(float)
        x_s = rng.binomial(n_s, 0.01).astype(float)
        exposed += np.where(serving & faulty, n_c, 0)
        n_c = np.maximum(n_c, 1).astype(float)
        back = sequential.rate_vs_stable_log_factors(
            n_c,
            x_c,
            n_s,
            x_s,
            tolerance_ratio=TOLERANCE_RATIO,
            tolerance_fraction=TOLERANCE_POINTS / 100,
        )[:, None, :]
        rollback = sequential.accumulate(rollback, back, tick)
        fired = sequential.log_e_value(rollback) >= math.log(1 / ALPHA)
        rolled_at = np.where(live & fired, now, rolled_at)
        live &= ~fired
        factors = promotion.vs_stable_log_factors(
            n_c, x_c, n_s, x_s, margin_ratio=margin, margin_fraction=0.0
        )
        promote += factors
        log_e = special.logsumexp(promote, axis=1) - math.log(promotion.PHI_DOWN.size)
        ready = log_e >= math.log(1 / BETA)
        if step_beta is not None:
            started = np.arange(len(STEPS) - 1)[None, :] <= index[:, None]
            begun += np.where(started[..., None], factors[:, None, :], 0.0)
            log_begun = special.logsumexp(begun, axis=2) - math.log(promotion.PHI_DOWN.size)
            every = np.all(~started | (log_begun >= math.log(1 / BETA)), axis=1)
            step = log_e >= math.log(1 / step_beta)
            ready = np.where(index == len(STEPS) - 2, every, step)
        move = live & ready & (now - since >= min_step)
        index = np.where(move, index + 1, index)
        since = np.where(move, now, since)
        if not carry:
            promote[move] = 0.0  # each step is its own test (engine.promotion.restart)
        full = move & (index == len(STEPS) - 1)
        done_at = np.where(full, now, done_at)
        index = np.minimum(index, len(STEPS) - 1)
    return {
        "promoted": float(np.mean(~np.isnan(done_at))),
        "rolled_back": float(np.mean(~np.isnan(rolled_at))),
        "median_s": float(np.nanmedian(done_at)) if np.any(~np.isnan(done_at)) else math.nan,
        "p95_s": float(np.nanpercentile(done_at, 95)) if np.any(~np.isnan(done_at)) else math.nan,
        "exposed": float(np.median(exposed)),
    }


def fixed(
    runs: int,
    p_canary: float,
    rng: np.random.Generator,
    *,
    weights: list[int],
    fails: float,
    rollback_at: int,
    final_check: bool,
) -> dict[str, float]:
    """Fixed 1m steps: a check per minute fails when the canary's error rate > ``fails``."""
    failed = np.zeros(runs)
    exposed = np.zeros(runs)
    rolled = np.zeros(runs, dtype=bool)
    checks = len(weights) + (1 if final_check else 0)
    for minute in range(checks):
        weight = weights[min(minute, len(weights) - 1)] / 100.0
        n_c = rng.binomial(rng.poisson(RATE * 60, runs), weight)
        x_c = rng.binomial(n_c, p_canary)
        exposed += np.where(rolled, 0, n_c)
        failed += (x_c > fails * np.maximum(n_c, 1)) & ~rolled
        rolled |= failed >= rollback_at
    seconds = 60.0 * checks
    exposed += np.where(rolled, 0, RATE * (HORIZON - seconds))  # promoted: all traffic after
    return {
        "promoted": float(np.mean(~rolled)),
        "rolled_back": float(np.mean(rolled)),
        "median_s": seconds,
        "p95_s": seconds,
        "exposed": float(np.median(exposed)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--margin", type=float, default=2.0, help="promotion margin_ratio")
    parser.add_argument(
        "--step-beta", type=float, default=None, help="also run with promotion step_beta"
    )
    parser.add_argument("--min-step", type=float, default=MIN_STEP, help="with --step-beta")
    args = parser.parse_args()
    runs = args.runs
    rng = np.random.default_rng(17)
    rows = []
    for label, p in (("healthy (1% = 1%)", 0.01), ("bad (1% -> 2%)", 0.02)):
        rows.append(
            (f"rollguard (margin {args.margin:g}x)", label, rollguard(runs, p, rng, args.margin))
        )
        flagger = {"weights": [10, 20, 30, 40, 50], "fails": 0.01, "rollback_at": 5}
        rows.append(("Flagger", label, fixed(runs, p, rng, final_check=True, **flagger)))
        argo = {"weights": [20, 40, 60, 80], "fails": 0.05, "rollback_at": 4}
        rows.append(("Argo Rollouts", label, fixed(runs, p, rng, final_check=True, **argo)))
    mid = "bad from the 3rd step (25 %)"  # a fault that comes mid-promotion
    for tool, carry in (
        (f"rollguard (margin {args.margin:g}x)", False),
        ("… evidence kept across steps", True),
    ):
        rows.append((tool, mid, rollguard(runs, 0.02, rng, args.margin, fault_step=2, carry=carry)))
    if args.step_beta is not None:
        fast = {"step_beta": args.step_beta, "min_step": args.min_step}
        tool = f"… step_beta {args.step_beta:g}, min_step_duration {args.min_step:g}s"
        for label, p, at in (
            ("healthy (1% = 1%)", 0.01, 0),
            ("bad (1% -> 2%)", 0.02, 0),
            (mid, 0.02, 2),
            ("bad from the 4th step (50 %)", 0.02, 3),
        ):
            rows.append((tool, label, rollguard(runs, p, rng, args.margin, fault_step=at, **fast)))
    print(f"{runs} runs each; 200 requests/s; 5 s scrapes")
    print(
        "| tool | release | promoted | rolled back | time to 100 % (median / p95 s) "
        "| canary requests served (from the fault on), 30 min (median) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for tool, label, r in rows:
        took = "—" if math.isnan(r["median_s"]) else f"{r['median_s']:.0f} / {r['p95_s']:.0f}"
        print(
            f"| {tool} | {label} | {r['promoted']:.1%} | {r['rolled_back']:.1%} | "
            f"{took} | {r['exposed']:,.0f} |"
        )


if __name__ == "__main__":
    main()
