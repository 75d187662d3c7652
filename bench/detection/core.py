"""What every table of the suite shares: running a scenario, the optimum, intervals.

Kept apart from ``run.py`` so that the late-onset tables (``late.py``) use the
same simulation and the same optimum as the main tables.
"""

from __future__ import annotations

import math

import numpy as np

from bench.detection.optimum import literal_kl, wald_expected_requests
from bench.detection.simulate import Scenario, scrapes
from bench.detection.strategies import ALL, ROLLGUARDS, Strategy
from rollguard.engine import sequential as seq


def optimum_requests(scenario: Scenario) -> float | None:
    """Wald's SPRT expected sample size (alpha = beta = 0.01, known baseline)."""
    if scenario.fault == "errors":
        return wald_expected_requests(literal_kl("errors", scenario.error_rate))
    if scenario.fault == "latency":
        return wald_expected_requests(literal_kl("latency", scenario.log_shift))
    return None


def api_and_kernels(horizon: int | None, seed: int = 1) -> tuple[dict[str, float], float]:
    """One random error-rate series through the per-trigger API and through the
    vectorized kernels the strategies call, with the detector ``horizon`` selects (in
    updates; None: the mixture): (the API's last evidence, the kernels' log e-value).
    The two must agree, or the benchmark measures other code than users run."""
    rng = np.random.default_rng(seed)
    n_c, n_s = rng.poisson(50, 40), rng.poisson(450, 40)
    x_c, x_s = rng.binomial(n_c, 0.03), rng.binomial(n_s, 0.01)
    state = seq.SequentialState()
    evidence: dict[str, float] = {}
    for a, b, c, d in zip(n_c, x_c, n_s, x_s, strict=True):
        update = seq.update_rate_vs_stable(
            state,
            canary_requests=float(a),
            canary_errors=float(b),
            stable_requests=float(c),
            stable_errors=float(d),
            alpha=0.005,
            tolerance_ratio=1.2,
            tolerance_points=0.1,
            horizon=horizon,
        )
        state, evidence = update.state, update.evidence
    factors = seq.rate_vs_stable_log_factors(
        n_c, x_c, n_s, x_s, tolerance_ratio=1.2, tolerance_fraction=0.001
    )
    kernel = None
    for t, row in enumerate(factors):
        kernel = seq.accumulate(kernel, row[None, :], t + 1, horizon)
    return evidence, float(seq.log_e_value(kernel))


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval for a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def median_interval(values: np.ndarray, z: float = 1.96) -> tuple[float, float]:
    """Distribution-free 95% interval for the median: order statistics at the
    binomial(n, 1/2) quantiles (normal approximation); inf counts as the largest."""
    ordered = np.sort(values)
    n = len(ordered)
    if n == 0:
        return (math.inf, math.inf)
    half = z * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - half))
    high = min(n - 1, math.ceil(n / 2 + half) - 1)
    return (float(ordered[low]), float(ordered[high]))


def simulate(
    scenario: Scenario, runs: int, seed: int, kinds: list[type[Strategy]] = ALL
) -> dict[str, np.ndarray]:
    """Seconds to the first firing per run and strategy (inf when it never fired)."""
    rng = np.random.default_rng(seed)
    strategies = [cls(runs) for cls in kinds]
    fired = {s.name: np.full(runs, np.inf) for s in strategies}
    for scrape in scrapes(scenario, runs, rng):
        for strategy in strategies:
            now = strategy.step(scrape)
            first = fired[strategy.name]
            first[now & np.isinf(first)] = (scrape.t + 1) * 5.0
    return fired


def simulate_task(task: tuple[Scenario, int, int]) -> dict[str, np.ndarray]:
    """``simulate`` for a process pool."""
    return simulate(*task)


def simulate_rollguards(task: tuple[Scenario, int, int]) -> dict[str, np.ndarray]:
    """``simulate`` of rollguard's two change-point schedules only, for a process pool."""
    return simulate(*task, kinds=ROLLGUARDS)


def fmt_seconds(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:.0f}"
