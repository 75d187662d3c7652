"""The strategies compared, each fed the same scrapes; ``step`` says who fires now.

rollguard's strategies call the kernels of ``rollguard.engine.sequential`` (the
same code the scalar per-trigger API runs; ``run.py`` checks they agree).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from bench.detection.simulate import (
    BASE_ERROR_RATE,
    BASE_MEMORY_MB,
    BASELINE_P50,
    BASELINE_P95,
    BOUNDS,
    Scrape,
)
from rollguard.engine import sequential as seq
from rollguard.engine import sequential_latency as seq_latency
from rollguard.engine.sequential_shift import cells_from_tails
from rollguard.policy import load_policy
from rollguard.signals import Signal

POLICY_FILE = Path(__file__).resolve().parents[2] / "examples" / "sequential-policy.yaml"


@dataclass(frozen=True)
class Tolerance:
    """A sequential trigger's test settings, as examples/sequential-policy.yaml gives them."""

    alpha: float  # after the Bonferroni split over the policy's sequential triggers
    ratio: float
    fraction: float
    horizon: int | None  # the e-detector's, in scrapes; None for the mixture


def _from_policy() -> dict[Signal, Tolerance]:
    policy = load_policy(POLICY_FILE)
    rules = [r for r in policy.rules if r.detection.method != "threshold"]
    alphas = seq.alpha_per_trigger([r.detection.alpha for r in rules])
    return {
        r.signal: Tolerance(
            a,
            r.detection.tolerance_ratio,
            r.detection.tolerance_points / 100,
            r.detection.horizon_updates(policy.analysis.interval),
        )
        for r, a in zip(rules, alphas, strict=True)
    }


SETTINGS = _from_policy()
ERRORS = SETTINGS[Signal.ERROR_RATE_PERCENT]
LATENCY = SETTINGS[Signal.LATENCY_P95_MS]


def histogram_quantile(q: float, cumulative: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket."""
    rank = q * total
    upper = np.concatenate([BOUNDS, [np.inf]])
    cum = np.concatenate([cumulative, total[:, None]], axis=1)
    idx = np.argmax(cum >= rank[:, None], axis=1)
    lower_bound = np.where(idx > 0, upper[np.maximum(idx - 1, 0)], 0.0)
    lower_count = np.where(idx > 0, cum[np.arange(len(idx)), np.maximum(idx - 1, 0)], 0.0)
    upper_count = cum[np.arange(len(idx)), idx]
    upper_bound = upper[idx]
    width = np.maximum(upper_count - lower_count, 1e-12)
    value = lower_bound + (upper_bound - lower_bound) * (rank - lower_count) / width
    value = np.where(np.isinf(upper_bound), BOUNDS[-1], value)
    return np.where(total > 0, value, np.nan)


class Window:
    """Sums of the last ``size`` scrapes of a few per-run arrays."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[tuple[np.ndarray, ...]] = deque()
        self.sums: list[np.ndarray] | None = None

    def push(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if self.sums is None:
            self.sums = [np.zeros_like(a) for a in arrays]
        self.items.append(arrays)
        self.sums = [s + a for s, a in zip(self.sums, arrays, strict=True)]
        if len(self.items) > self.size:
            old = self.items.popleft()
            self.sums = [s - a for s, a in zip(self.sums, old, strict=True)]
        return self.sums


class Strategy:
    name = ""

    def __init__(self, runs: int) -> None:
        self.runs = runs

    def step(self, s: Scrape) -> np.ndarray:
        raise NotImplementedError


class MemoryRule:
    """The seed's memory trigger: 2-minute mean above baseline + 50 MB, 2 in a row."""

    def __init__(self, runs: int) -> None:
        self.window = Window(24)
        self.streak = np.zeros(runs)

    def step(self, s: Scrape) -> np.ndarray:
        (total,) = self.window.push(s.canary_memory_mb)
        mean = total / len(self.window.items)
        self.streak = np.where(mean > BASE_MEMORY_MB + 50, self.streak + 1, 0)
        return self.streak >= 2


class Seed(Strategy):
    """The seed's rules as rollguard's threshold mode runs them: every 5 s, error rate
    over a sliding 5 min > 5%, p95 over 3 min > baseline + 30%, at least 20 requests,
    2 evaluations in a row."""

    name = "seed rules"

    def __init__(self, runs: int) -> None:
        super().__init__(runs)
        self.errors = Window(60)
        self.latency = Window(36)
        self.memory = MemoryRule(runs)
        self.err_streak = np.zeros(runs)
        self.lat_streak = np.zeros(runs)

    def step(self, s: Scrape) -> np.ndarray:
        n, x = self.errors.push(s.canary_requests, s.canary_errors)
        err = (n >= 20) & (x > 0.05 * np.maximum(n, 1))
        self.err_streak = np.where(err, self.err_streak + 1, 0)
        total, buckets = self.latency.push(s.canary_requests, s.canary_buckets)
        p95 = histogram_quantile(0.95, buckets, total)
        lat = (total >= 20) & (p95 > 1.3 * BASELINE_P95)
        self.lat_streak = np.where(lat, self.lat_streak + 1, 0)
        return (self.err_streak >= 2) | (self.lat_streak >= 2) | self.memory.step(s)


#: Flagger's ticks after a release before its first check: scale up, start the analysis.
SETUP_TICKS = 2
#: Argo Rollouts' default ``consecutiveErrorLimit``.
CONSECUTIVE_ERROR_LIMIT = 4


class Flagger(Strategy):
    """A simulation of Flagger's analysis rules; by default its documented settings:
    interval 1m, threshold 5, request-success-rate >= 99% and request-duration p99
    <= 500 ms over 1m.

    The rules are those the real Flagger v1.44.0 follows (``advanceCanary`` in its
    pkg/controller/scheduler.go, and the runs of ``bench.peers``): its loop ticks every
    interval at a phase fixed when the Canary was created, here spread evenly over the
    interval across the runs (``phase`` pins it, in scrapes after the release); the
    first tick after the release only scales the canary up ("New revision detected"),
    the second starts the analysis without a check ("Starting canary analysis"); every
    later tick rolls back if the failed checks have reached the threshold, else runs
    the checks. A check whose query finds no request fails ("no values found").
    Not modelled: the wait for the canary's pods to be ready (the simulated canary
    serves from the release) and a loop running late on a loaded machine, both seen
    in ``bench.peers``. The keywords are in 5 s scrapes."""

    name = "Flagger"

    def __init__(
        self,
        runs: int,
        *,
        interval: int = 12,
        threshold: int = 5,
        success_window: int = 12,
        duration_window: int = 12,
        success_min: float = 0.99,
        phase: int | None = None,
    ) -> None:
        super().__init__(runs)
        self.interval, self.threshold, self.success_min = interval, threshold, success_min
        self.phase = np.arange(runs) % interval + 1 if phase is None else np.full(runs, phase)
        self.success = Window(success_window)
        self.duration = Window(duration_window)
        self.ticks = np.zeros(runs)
        self.failed = np.zeros(runs)
        self.rolled_back = np.zeros(runs, dtype=bool)
        self.scrapes = 0

    def step(self, s: Scrape) -> np.ndarray:
        n, x = self.success.push(s.canary_requests, s.canary_errors)
        total, buckets = self.duration.push(s.canary_requests, s.canary_buckets)
        self.scrapes += 1
        due = (self.scrapes >= self.phase) & ((self.scrapes - self.phase) % self.interval == 0)
        self.ticks = self.ticks + due
        checking = due & (self.ticks >= SETUP_TICKS + 1) & ~self.rolled_back
        self.rolled_back |= checking & (self.failed >= self.threshold)
        success = 1 - x / np.maximum(n, 1)
        p99 = histogram_quantile(0.99, buckets, total)
        failed = (n == 0) | (success < self.success_min) | np.isnan(p99) | (p99 > 0.5)
        self.failed = self.failed + (checking & ~self.rolled_back & failed)
        return self.rolled_back


class ArgoMetric:
    """One Argo Rollouts metric's counts, as its analysis/analysis.go assesses them:
    failed when Failed measurements exceed ``failureLimit``, errored when consecutive
    Error measurements exceed ``consecutiveErrorLimit``; either ends the analysis and
    aborts the rollout. A measurement that is not an Error resets the error count."""

    def __init__(self, runs: int, failure_limit: int) -> None:
        self.failure_limit = failure_limit
        self.failed = np.zeros(runs)
        self.errors = np.zeros(runs)

    def measure(self, failed: np.ndarray, error: np.ndarray) -> np.ndarray:
        """Count one measurement per run; True where the metric has now failed or errored."""
        self.failed = self.failed + (failed & ~error)
        self.errors = np.where(error, self.errors + 1, 0)
        ended: np.ndarray = (self.failed > self.failure_limit) | (
            self.errors > CONSECUTIVE_ERROR_LIMIT
        )
        return ended


class Argo(Strategy):
    """A simulation of Argo Rollouts' analysis rules; by default interval 1m,
    failureLimit 3 and ``successCondition: result[0] >= 0.95`` on the 1m success rate.

    The rules are those the real Argo Rollouts v1.10.1 follows (its analysis/analysis.go,
    and the runs of ``bench.peers``): the first measurement is taken when the analysis
    starts (``first`` scrapes after the release; 0: at the release, before any data),
    then one every interval; ``result[0] >= 0.95`` passes an error rate of exactly 5%;
    a window without a canary request is 0/0 = NaN, which no condition accepts: a
    Failed measurement; a query that finds no series is an Error, counted against
    ``consecutiveErrorLimit`` (4), not ``failureLimit``. The canary's request counter
    is taken to appear at its first request (a Prometheus client creates a labelled
    series then), so a measurement before it is an Error; ``series_from_start`` makes
    it NaN instead, as the exporter of ``bench.peers`` serves zeros from the start.
    ``window`` is the query's range (1 for ``irate``), ``p99_max`` an optional latency
    metric with the same interval and failure limit. The keywords are in 5 s scrapes."""

    name = "Argo Rollouts"

    def __init__(
        self,
        runs: int,
        *,
        interval: int = 12,
        failure_limit: int = 3,
        window: int = 12,
        error_limit: float = 0.05,
        first: int = 0,
        series_from_start: bool = False,
        p99_max: float | None = None,
        p99_window: int = 12,
    ) -> None:
        super().__init__(runs)
        self.interval, self.first = interval, first
        self.error_limit, self.p99_max = error_limit, p99_max
        self.series_from_start = series_from_start
        self.window = Window(window)
        self.latency = Window(p99_window)
        self.errors = ArgoMetric(runs, failure_limit)
        self.slow = ArgoMetric(runs, failure_limit)
        self.served = np.zeros(runs)
        self.aborted = np.zeros(runs, dtype=bool)
        self.ticks = 0

    def step(self, s: Scrape) -> np.ndarray:
        if self.ticks == 0 and self.first == 0:
            self._measure(np.zeros(self.runs), np.zeros(self.runs), None)
        n, x = self.window.push(s.canary_requests, s.canary_errors)
        total, buckets = self.latency.push(s.canary_requests, s.canary_buckets)
        self.served = self.served + s.canary_requests
        self.ticks += 1
        if self.ticks >= self.first and (self.ticks - self.first) % self.interval == 0:
            self._measure(n, x, (total, buckets))
        return self.aborted

    def _measure(
        self, n: np.ndarray, x: np.ndarray, latency: tuple[np.ndarray, np.ndarray] | None
    ) -> None:
        error = np.zeros(self.runs, dtype=bool)
        if not self.series_from_start:
            error = self.served == 0
        # NaN (n == 0) fails; result[0] >= 1 - limit passes the limit itself
        failed = (n == 0) | (x / np.maximum(n, 1) > self.error_limit)
        self.aborted |= self.errors.measure(failed, error)
        if self.p99_max is not None:
            p99 = np.full(self.runs, np.nan)
            if latency is not None:
                p99 = histogram_quantile(0.99, latency[1], latency[0])
            self.aborted |= self.slow.measure(np.isnan(p99) | (p99 > self.p99_max), error)


class Kayenta(Strategy):
    """A Kayenta-like judge: every minute, once 50 per-scrape points per version exist,
    a Mann-Whitney test at 98% confidence on error rate and on p95 latency points;
    fails when either is significantly higher on the canary."""

    name = "Kayenta MWU"

    def __init__(self, runs: int) -> None:
        super().__init__(runs)
        self.points: dict[str, list[np.ndarray]] = {k: [] for k in ("ec", "es", "lc", "ls")}

    def step(self, s: Scrape) -> np.ndarray:
        self.points["ec"].append(s.canary_errors / np.maximum(s.canary_requests, 1))
        self.points["es"].append(s.stable_errors / np.maximum(s.stable_requests, 1))
        self.points["lc"].append(histogram_quantile(0.95, s.canary_buckets, s.canary_requests))
        self.points["ls"].append(histogram_quantile(0.95, s.stable_buckets, s.stable_requests))
        count = len(self.points["ec"])
        if count < 50 or count % 12:
            return np.zeros(self.runs, dtype=bool)
        fired = np.zeros(self.runs, dtype=bool)
        for canary, stable in (("ec", "es"), ("lc", "ls")):
            x = np.nan_to_num(np.stack(self.points[canary], axis=1))
            y = np.nan_to_num(np.stack(self.points[stable], axis=1))
            with np.errstate(invalid="ignore", divide="ignore"):
                p = stats.mannwhitneyu(x, y, axis=1, alternative="greater", method="asymptotic")
            fired |= np.nan_to_num(p.pvalue, nan=1.0) < 0.01  # two-sided 98%
        return fired


class Rollguard(Strategy):
    """rollguard's sequential detection vs the stable version measured at the same time
    (examples/sequential-policy.yaml): error-rate and latency e-processes at
    the policy's alpha split over them, plus the seed's memory threshold."""

    name = "rollguard"
    error_horizon = ERRORS.horizon
    latency_horizon = LATENCY.horizon

    def __init__(self, runs: int) -> None:
        super().__init__(runs)
        self.errors = np.full((runs, 1, seq.GRID_SIZE), -np.inf)
        self.latency = np.full((runs, 2 * len(BOUNDS) + 1, seq.GRID_SIZE), -np.inf)
        self.weights = seq_latency.stable_latency_weights(len(BOUNDS))
        self.seen = np.zeros((runs, len(BOUNDS) + 1))  # the stable's requests per bucket
        self.updates = np.zeros(runs)
        self.memory = MemoryRule(runs)

    def step(self, s: Scrape) -> np.ndarray:
        ok = (s.canary_requests > 0) & (s.stable_requests > 0)  # else: no update
        self.updates += ok
        index = np.maximum(self.updates, 1)
        n_c = np.where(ok, s.canary_requests, 1.0)
        n_s = np.where(ok, s.stable_requests, 1.0)
        factors = seq.rate_vs_stable_log_factors(
            n_c,
            np.where(ok, s.canary_errors, 0.0),
            n_s,
            np.where(ok, s.stable_errors, 0.0),
            tolerance_ratio=ERRORS.ratio,
            tolerance_fraction=ERRORS.fraction,
        )
        updated = seq.accumulate(self.errors, factors[:, None, :], index, self.error_horizon)
        self.errors = np.where(ok[:, None, None], updated, self.errors)
        slow_c = np.where(ok[:, None], s.canary_requests[:, None] - s.canary_buckets, 0.0)
        slow_s = np.where(ok[:, None], s.stable_requests[:, None] - s.stable_buckets, 0.0)
        lat = seq_latency.stable_latency_log_factors(
            n_c,
            slow_c,
            n_s,
            slow_s,
            stable_seen=self.seen,
            tolerance_ratio=LATENCY.ratio,
            tolerance_fraction=LATENCY.fraction,
        )
        updated = seq.accumulate(self.latency, lat, index, self.latency_horizon)
        self.latency = np.where(ok[:, None, None], updated, self.latency)
        self.seen = self.seen + np.where(ok[:, None], cells_from_tails(n_s, slow_s), 0.0)
        return (
            (seq.log_e_value(self.errors) >= math.log(1 / ERRORS.alpha))
            | (seq.log_e_value(self.latency, self.weights) >= math.log(1 / LATENCY.alpha))
            | self.memory.step(s)
        )


class RollguardMixture(Rollguard):
    """The same tests with the change-point mixture rollguard used before the e-detector
    (``detector: mixture``): the bet on a late start decays as 1 / (k (k + 1))."""

    name = "rollguard (mixture)"
    error_horizon = None
    latency_horizon = None


class RollguardBaseline(Strategy):
    """rollguard's sequential detection against the known baseline (1% errors, p50 and
    p95 from the load test); no concurrent stable needed."""

    name = "rollguard (baseline)"

    def __init__(self, runs: int) -> None:
        super().__init__(runs)
        self.errors = np.full((runs, 1, seq.GRID_SIZE), -np.inf)
        self.updates = 0
        # the first bucket boundary at or above each baseline quantile
        self.checks = baseline_checks()
        self.latency = np.full((runs, len(self.checks), seq.GRID_SIZE), -np.inf)
        self.memory = MemoryRule(runs)

    def step(self, s: Scrape) -> np.ndarray:
        self.updates += 1  # zero-traffic intervals add a factor of 1; harmless here
        null_rate = ERRORS.ratio * BASE_ERROR_RATE + ERRORS.fraction
        factors = seq.rate_vs_baseline_log_factors(
            s.canary_requests, s.canary_errors, null_rate=null_rate
        )
        self.errors = seq.accumulate(self.errors, factors[:, None, :], self.updates, ERRORS.horizon)
        lat = np.stack(
            [
                seq.rate_vs_baseline_log_factors(
                    s.canary_requests,
                    s.canary_requests - s.canary_buckets[:, bound],
                    null_rate=rate,
                )
                for bound, rate in self.checks
            ],
            axis=1,
        )
        self.latency = seq.accumulate(self.latency, lat, self.updates, LATENCY.horizon)
        return (
            (seq.log_e_value(self.errors) >= math.log(1 / ERRORS.alpha))
            | (seq.log_e_value(self.latency) >= math.log(1 / LATENCY.alpha))
            | self.memory.step(s)
        )


def baseline_checks() -> list[tuple[int, float]]:
    """(bucket index, null tail share): the first boundary at or above each baseline quantile."""
    return [
        (int(np.argmax(value <= BOUNDS)), LATENCY.ratio * (1 - q) + LATENCY.fraction)
        for q, value in ((0.5, BASELINE_P50), (0.95, BASELINE_P95))
    ]


ALL: list[type[Strategy]] = [
    Seed,
    Flagger,
    Argo,
    Kayenta,
    Rollguard,
    RollguardMixture,
    RollguardBaseline,
]
#: The two change-point schedules side by side (the late-fault and 60-minute tables).
ROLLGUARDS: list[type[Strategy]] = [Rollguard, RollguardMixture]
