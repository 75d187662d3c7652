"""Canary requests needed to detect, free of the scrape interval's rounding.

The e-processes are fed small batches of canary requests (and the matching
stable requests for the share) until they reach 1 / alpha; a batch is a
fiftieth of Wald's optimum (at least one request), so the count's rounding
stays within 2%. The median count is compared with the three yardsticks of
``optimum.py``. The scrape-interval delay is what the main table adds on top.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from bench.detection.optimum import literal_kl, optima, wald_expected_requests
from bench.detection.simulate import BOUNDS, SIGMA, cells, multinomial
from bench.detection.strategies import BASE_ERROR_RATE, ERRORS, LATENCY, baseline_checks
from rollguard.engine import sequential as seq
from rollguard.engine import sequential_latency as seq_latency
from rollguard.engine.sequential_shift import cells_from_tails

RESOLUTION = 50  # batches per optimum
WARMUP_BATCH = 500  # a 5 s scrape's canary requests at 100 requests/s
EFFECTS: list[tuple[str, str, float]] = [
    ("errors 1%->2%", "errors", 0.02),
    ("errors 1%->5%", "errors", 0.05),
    ("errors 1%->10%", "errors", 0.10),
    ("latency +10%", "latency", math.log(1.1)),
    ("latency +0.25sd", "latency", 0.25 * SIGMA),
    ("latency +30%", "latency", math.log(1.3)),
    ("latency +100%", "latency", math.log(2.0)),
]
SHARES = (0.05, 0.2, 0.5)
STABLE, MIXTURE, BASELINE = "rollguard", "rollguard (mixture)", "rollguard (baseline)"


@dataclass(frozen=True)
class Detected:
    """Canary requests from the onset to the first firing, over the runs of one cell."""

    median: float
    p90: float
    grid_nats: float  # median, at the firing: log(best single alternative) - log(e-value)


def _requests_to_detect(
    kind: str,
    effect: float,
    share: float,
    *,
    runs: int,
    cap: int,
    batch: int,
    rng: np.random.Generator,
    warmup: int = 0,
) -> dict[str, Detected]:
    """Canary requests from the fault's onset to the first firing, per strategy.

    ``warmup`` healthy updates of a scrape's worth of requests (100 canary
    requests/s) come first: a late fault then starts at update ``warmup + 1``.
    """
    tol = ERRORS if kind == "errors" else LATENCY
    threshold = math.log(1 / tol.alpha)
    weights = seq_latency.stable_latency_weights(len(BOUNDS)) if kind == "latency" else None
    seen = np.zeros((runs, len(BOUNDS) + 1))  # the stable's requests per bucket
    checks = baseline_checks()
    horizons = {STABLE: tol.horizon, MIXTURE: None, BASELINE: tol.horizon}
    state: dict[str, np.ndarray | None] = dict.fromkeys(horizons)
    first = {name: np.full(runs, np.inf) for name in horizons}
    grid = {name: np.full(runs, np.nan) for name in horizons}
    canary_cells, stable_cells = cells(np.full(runs, effect)), cells(np.zeros(runs))
    healthy_effect = BASE_ERROR_RATE if kind == "errors" else 0.0
    for step in range(-warmup, math.ceil(cap / batch)):
        size = batch if step >= 0 else WARMUP_BATCH
        stable_batch = round(size * (1 - share) / share)
        n_c, n_s = np.full(runs, float(size)), np.full(runs, float(stable_batch))
        now = effect if step >= 0 else healthy_effect
        if kind == "errors":
            x_c = rng.binomial(size, now, runs).astype(float)
            x_s = rng.binomial(stable_batch, BASE_ERROR_RATE, runs).astype(float)
            stable_factors = seq.rate_vs_stable_log_factors(
                n_c, x_c, n_s, x_s, tolerance_ratio=tol.ratio, tolerance_fraction=tol.fraction
            )[:, None, :]
            null_rate = tol.ratio * BASE_ERROR_RATE + tol.fraction
            base_factors = seq.rate_vs_baseline_log_factors(n_c, x_c, null_rate=null_rate)[
                :, None, :
            ]
        else:
            slow_c = size - multinomial(rng, n_c, canary_cells if step >= 0 else stable_cells)
            slow_s = stable_batch - multinomial(rng, n_s, stable_cells)
            stable_factors = seq_latency.stable_latency_log_factors(
                n_c,
                slow_c,
                n_s,
                slow_s,
                stable_seen=seen,
                tolerance_ratio=tol.ratio,
                tolerance_fraction=tol.fraction,
            )
            seen = seen + cells_from_tails(n_s, slow_s)
            base_factors = np.stack(
                [
                    seq.rate_vs_baseline_log_factors(n_c, slow_c[:, bound], null_rate=rate)
                    for bound, rate in checks
                ],
                axis=1,
            )
        for name, horizon in horizons.items():
            factors = base_factors if name == BASELINE else stable_factors
            state[name] = seq.accumulate(state[name], factors, warmup + step + 1, horizon)
        if step < 0:
            continue
        for name, products in state.items():
            mix = None if name == BASELINE else weights
            log_e = seq.log_e_value(products, mix)
            hit = (log_e >= threshold) & np.isinf(first[name])
            first[name][hit] = (step + 1) * batch
            grid[name][hit] = _best_single(products)[hit] - log_e[hit]
        if all(np.mean(np.isfinite(v)) > 0.9 for v in first.values()):
            break  # every p90 is known
    return {
        name: Detected(
            float(np.quantile(v, 0.5, method="inverted_cdf")),
            float(np.quantile(v, 0.9, method="inverted_cdf")),
            float(np.nanmedian(grid[name])) if np.any(np.isfinite(grid[name])) else math.nan,
        )
        for name, v in first.items()
    }


def _best_single(products: np.ndarray | None) -> np.ndarray:
    """log of the largest single (component, alternative) e-process: what a test that had
    put all its weight on the alternative the data favoured would hold."""
    assert products is not None  # accumulated before any firing is checked
    out: np.ndarray = products.max(axis=(-2, -1))
    return out


Key = tuple[str, float, str]  # (effect label, share, strategy)
#: The e-processes a cell runs, each with what it compares the canary with.
TESTS = ((STABLE, "stable"), (MIXTURE, "stable"), (BASELINE, "baseline"))


def _count(requests: float) -> str:
    return "never" if math.isinf(requests) else f"{requests:.0f}"


def batch_for(kind: str, effect: float) -> int:
    """Requests per batch: a fiftieth of Wald's literal optimum, at least one."""
    return max(1, round(wald_expected_requests(literal_kl(kind, effect)) / RESOLUTION))


def _one(task: tuple[str, str, float, float, int, int, int, int]) -> dict[str, Detected]:
    _, kind, effect, share, runs, cap, seed, warmup = task
    return _requests_to_detect(
        kind,
        effect,
        share,
        runs=runs,
        cap=cap,
        batch=batch_for(kind, effect),
        rng=np.random.default_rng(seed),
        warmup=warmup,
    )


def measure(
    mapper: Callable[..., Iterable[dict[str, Detected]]] = map,
    *,
    quick: bool = False,
    warmup: int = 0,
    effects: list[tuple[str, str, float]] = EFFECTS,
    shares: tuple[float, ...] = SHARES,
) -> dict[Key, Detected]:
    """Canary requests to detect per (effect, share, strategy); with ``warmup`` healthy
    scrapes before the fault (a late fault), requests count from the onset."""
    runs, cap = (100, 8000) if quick else (400, 15000)
    tasks = [
        (label, kind, effect, share, runs, cap, 2024 + 100 * warmup + i, warmup)
        for i, (label, kind, effect, share) in enumerate(
            (label, kind, effect, share) for label, kind, effect in effects for share in shares
        )
    ]
    out: dict[Key, Detected] = {}
    for (label, _, _, share, *_), found in zip(tasks, mapper(_one, tasks), strict=True):
        for name, detected in found.items():
            out[(label, share, name)] = detected
    return out


def kind_effect(label: str) -> tuple[str, float]:
    return next((kind, effect) for name, kind, effect in EFFECTS if name == label)


def ratio(median: float, best: float) -> str:
    """``median / optimum = ratio``, or where the run stopped."""
    if math.isinf(median):
        return f"> {best:.0f} (not reached)"
    return f"{median:.0f} / {best:.0f} = {median / best:.2f}x"


def literal_ratios(medians: dict[Key, Detected]) -> dict[Key, str]:
    """Median requests / the issue's optimum (Wald, known baseline, exact latencies)."""
    return {
        key: ratio(found.median, wald_expected_requests(literal_kl(*kind_effect(key[0]))))
        for key, found in medians.items()
    }


def yardsticks(
    medians: dict[Key, Detected], label: str, share: float, name: str, reference: str
) -> str:
    """``median: literal x, measured y, tolerated z`` for one cell."""
    kind, effect = kind_effect(label)
    tol = ERRORS if kind == "errors" else LATENCY
    median = medians[(label, share, name)].median
    if math.isinf(median):
        return "not reached"
    best = optima(kind, effect, share, reference, ratio=tol.ratio, fraction=tol.fraction)
    return f"{median:.0f} = " + ", ".join(
        f"{median / best[y]:.2f}x" for y in ("literal", "measured", "tolerated")
    )


def table(medians: dict[Key, Detected], runs_note: str) -> str:
    """The requests table in Markdown, against all three yardsticks."""
    rows = [
        "## Canary requests to detect vs Wald's SPRT optimum, three ways",
        "",
        f"Batches of a fiftieth of the literal optimum; {runs_note}. *literal*: "
        "known baseline, exact latencies, no tolerance (the issue's). *measured*: latency "
        "through the histogram's buckets; vs stable, the stable's rate measured at the "
        "same time. *tolerated*: the measured one against the policy's tolerated null "
        "(errors 1.2 x + 0.1 points, latency + 1 point per bucket). Each cell: ratio "
        "(optimum in requests).",
        "",
        "| effect | share | test | median requests | / literal | / measured | / tolerated "
        "| p90 requests | unknown effect size, nats |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, kind, effect in EFFECTS:
        tol = ERRORS if kind == "errors" else LATENCY
        for share in SHARES:
            for name, reference in TESTS:
                found = medians[(label, share, name)]
                median = found.median
                best = optima(
                    kind, effect, share, reference, ratio=tol.ratio, fraction=tol.fraction
                )
                cells_ = " | ".join(
                    "—" if math.isinf(median) else f"{median / best[y]:.2f}x ({best[y]:.0f})"
                    for y in ("literal", "measured", "tolerated")
                )
                rows.append(
                    f"| {label} | {share:.0%} | {name} | {_count(median)} | {cells_} "
                    f"| {_count(found.p90)} | {found.grid_nats:.2f} |"
                )
    return "\n".join(rows)
