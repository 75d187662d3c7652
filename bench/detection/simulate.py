"""Scenarios with ground truth, simulated scrape by scrape for many deployments at once.

Every array has the runs on its first axis. Each 5 s scrape yields per version
the request count, the 5xx count, cumulative histogram bucket counts
(Prometheus' default buckets; log-normal latencies, median 100 ms, sigma 0.5)
and, for the canary, resident memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import stats

SCRAPE_SECONDS = 5.0
BOUNDS = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
MEDIAN_SECONDS = 0.1
SIGMA = 0.5  # of log-latency
BASE_ERROR_RATE = 0.01
BASE_MEMORY_MB = 200.0
MEMORY_NOISE_MB = 5.0
#: The baseline a load test would have measured (the seed's performance-baseline.json).
BASELINE_P50 = MEDIAN_SECONDS
BASELINE_P95 = MEDIAN_SECONDS * math.exp(stats.norm.ppf(0.95) * SIGMA)


@dataclass(frozen=True)
class Scenario:
    """One row of the suite. ``fault`` is None for healthy (A/A) runs."""

    name: str
    canary_rps: float
    share: float  # canary share of traffic at the start
    seconds: float
    fault: str | None = None  # "errors", "latency", "memory"
    error_rate: float = BASE_ERROR_RATE  # the canary's, when fault == "errors"
    log_shift: float = 0.0  # the canary's log-latency shift, when fault == "latency"
    leak_mb_per_s: float = 0.0
    noise: str = "plain"  # healthy: "bursty", "diurnal", "incident", "shifting"
    onset_seconds: float = 0.0  # the fault begins here; healthy before (a late fault)

    @property
    def intervals(self) -> int:
        return round(self.seconds / SCRAPE_SECONDS)


@dataclass
class Scrape:
    """One interval's observations for every run."""

    t: int
    canary_requests: np.ndarray
    canary_errors: np.ndarray
    stable_requests: np.ndarray
    stable_errors: np.ndarray
    canary_buckets: np.ndarray  # (runs, len(BOUNDS)) cumulative counts, +Inf = requests
    stable_buckets: np.ndarray
    canary_memory_mb: np.ndarray


def cells(log_shift: float | np.ndarray) -> np.ndarray:
    """Probability of each bucket cell (last is above the largest bound), per run."""
    shift = np.atleast_1d(np.asarray(log_shift, dtype=float))[:, None]
    z = (np.log(BOUNDS / MEDIAN_SECONDS)[None, :] - shift) / SIGMA
    cdf = stats.norm.cdf(z)
    return np.diff(np.concatenate([np.zeros_like(shift), cdf, np.ones_like(shift)], axis=1))


def multinomial(rng: np.random.Generator, n: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Vectorized multinomial by conditional binomials; returns cumulative counts per bound."""
    left = n.astype(np.int64)
    mass = np.ones(n.shape[0])
    out = np.zeros((n.shape[0], probs.shape[1] - 1))
    total = np.zeros(n.shape[0])
    for k in range(probs.shape[1] - 1):
        p = np.clip(probs[:, k] / np.maximum(mass, 1e-300), 0.0, 1.0)
        draw = rng.binomial(left, p)
        left = left - draw
        mass = mass - probs[:, k]
        total = total + draw
        out[:, k] = total
    return out


def scrapes(scenario: Scenario, runs: int, rng: np.random.Generator) -> Iterator[Scrape]:
    """Yield the scenario's scrapes, one interval at a time, for ``runs`` deployments."""
    burst = np.zeros(runs, dtype=bool)
    ar = np.zeros(runs)
    phase = rng.uniform(0, 2 * math.pi, runs)
    incident_start = rng.integers(60, 240, runs)  # 5 to 20 minutes in
    memory_offset = np.zeros(runs)
    for t in range(scenario.intervals):
        seconds = t * SCRAPE_SECONDS
        share = np.full(runs, scenario.share)
        traffic = np.ones(runs)
        error_mult = np.ones(runs)
        latency_shift = np.zeros(runs)
        if scenario.noise == "bursty":
            # common-cause bursts (a dependency failing): both versions see them
            enter = rng.random(runs) < SCRAPE_SECONDS / 600
            leave = rng.random(runs) < SCRAPE_SECONDS / 30
            burst = np.where(burst, ~leave, enter)
            ar = 0.95 * ar + rng.normal(0, 0.3 * math.sqrt(1 - 0.95**2), runs)
            error_mult = np.exp(ar) * np.where(burst, 5.0, 1.0)
        elif scenario.noise == "diurnal":
            wave = np.sin(2 * math.pi * seconds / 3600 + phase)
            traffic = 1 + 0.5 * wave
            error_mult = 1 + 0.6 * wave
            latency_shift = 0.2 * wave
        elif scenario.noise == "incident":
            hit = (t >= incident_start) & (t < incident_start + 60)
            error_mult = np.where(hit, 20.0, 1.0)
            latency_shift = np.where(hit, math.log(3.0), 0.0)
        elif scenario.noise == "shifting":
            share = np.full(runs, [0.05, 0.2, 0.5][min(int(seconds // 600), 2)])
        canary_rps = scenario.canary_rps * traffic * share / scenario.share
        stable_rps = canary_rps * (1 - share) / share
        n_c = rng.poisson(canary_rps * SCRAPE_SECONDS)
        n_s = rng.poisson(stable_rps * SCRAPE_SECONDS)
        stable_rate = np.clip(BASE_ERROR_RATE * error_mult, 0, 1)
        canary_rate = stable_rate
        fault = scenario.fault if seconds >= scenario.onset_seconds else None
        if fault == "errors":
            canary_rate = np.clip(scenario.error_rate * error_mult, 0, 1)
        canary_shift = latency_shift + (scenario.log_shift if fault == "latency" else 0.0)
        if fault == "memory":
            memory_offset = memory_offset + scenario.leak_mb_per_s * SCRAPE_SECONDS
        yield Scrape(
            t=t,
            canary_requests=n_c.astype(float),
            canary_errors=rng.binomial(n_c, canary_rate).astype(float),
            stable_requests=n_s.astype(float),
            stable_errors=rng.binomial(n_s, stable_rate).astype(float),
            canary_buckets=multinomial(rng, n_c, cells(canary_shift + np.zeros(runs))),
            stable_buckets=multinomial(rng, n_s, cells(latency_shift + np.zeros(runs))),
            canary_memory_mb=BASE_MEMORY_MB + memory_offset + rng.normal(0, MEMORY_NOISE_MB, runs),
        )
