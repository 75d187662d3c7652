"""Canary requests needed to detect, free of the scrape interval's rounding.

The e-processes are fed batches of 10 canary requests (and the matching
stable requests for the share) until they reach 1 / alpha; the median count is
compared with Wald's SPRT optimum for a known baseline (alpha = beta = 0.01).
The scrape-interval delay is what the main table adds on top.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from bench.detection.simulate import BOUNDS, SIGMA, cells, multinomial
from bench.detection.strategies import (
    BASE_ERROR_RATE,
    ERRORS,
    LATENCY,
    baseline_checks,
    bernoulli_kl,
    wald_expected_requests,
)
from rollguard.engine import sequential as seq
from rollguard.engine import sequential_latency as seq_latency

BATCH = 10
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
STABLE, BASELINE = "rollguard", "rollguard (baseline)"


def _requests_to_detect(
    kind: str,
    effect: float,
    share: float,
    *,
    runs: int,
    cap: int,
    rng: np.random.Generator,
    warmup: int = 0,
) -> dict[str, np.ndarray]:
    """Canary requests from the fault's onset to the first firing, per run. ``warmup``
    healthy updates of a scrape's worth of requests (100 canary requests/s) come first:
    a late fault then starts at update ``warmup + 1`` of the change-point mixture."""
    tol = ERRORS if kind == "errors" else LATENCY
    threshold = math.log(1 / tol.alpha)
    width = 2 * len(BOUNDS) if kind == "latency" else 1
    vs_stable = np.full((runs, width, seq.GRID_SIZE), -np.inf)
    checks = baseline_checks()
    vs_base = np.full((runs, len(checks) if kind == "latency" else 1, seq.GRID_SIZE), -np.inf)
    first = {STABLE: np.full(runs, np.inf), BASELINE: np.full(runs, np.inf)}
    canary_cells, stable_cells = cells(np.full(runs, effect)), cells(np.zeros(runs))
    healthy_effect = BASE_ERROR_RATE if kind == "errors" else 0.0
    for step in range(-warmup, cap):
        batch, stable_batch = (
            (BATCH, round(BATCH * (1 - share) / share))
            if step >= 0
            else (WARMUP_BATCH, round(WARMUP_BATCH * (1 - share) / share))
        )
        n_c, n_s = np.full(runs, float(batch)), np.full(runs, float(stable_batch))
        now = effect if step >= 0 else healthy_effect
        if kind == "errors":
            x_c = rng.binomial(batch, now, runs).astype(float)
            x_s = rng.binomial(stable_batch, BASE_ERROR_RATE, runs).astype(float)
            stable_factors = seq.rate_vs_stable_log_factors(
                n_c,
                x_c,
                n_s,
                x_s,
                tolerance_ratio=tol.ratio,
                tolerance_fraction=tol.fraction,
            )[:, None, :]
            null_rate = tol.ratio * BASE_ERROR_RATE + tol.fraction
            base_factors = seq.rate_vs_baseline_log_factors(n_c, x_c, null_rate=null_rate)[
                :, None, :
            ]
        else:
            slow_c = batch - multinomial(rng, n_c, canary_cells if step >= 0 else stable_cells)
            slow_s = stable_batch - multinomial(rng, n_s, stable_cells)
            stable_factors = seq_latency.stable_latency_log_factors(
                n_c,
                slow_c,
                n_s,
                slow_s,
                tolerance_ratio=tol.ratio,
                tolerance_fraction=tol.fraction,
            )
            base_factors = np.stack(
                [
                    seq.rate_vs_baseline_log_factors(n_c, slow_c[:, bound], null_rate=rate)
                    for bound, rate in checks
                ],
                axis=1,
            )
        vs_stable = seq.accumulate(vs_stable, stable_factors, warmup + step + 1)
        vs_base = seq.accumulate(vs_base, base_factors, warmup + step + 1)
        if step < 0:
            continue
        for name, products in ((STABLE, vs_stable), (BASELINE, vs_base)):
            hit = (seq.log_e_value(products) >= threshold) & np.isinf(first[name])
            first[name][hit] = (step + 1) * BATCH
        if all(np.mean(np.isfinite(v)) > 0.5 for v in first.values()):
            break  # both medians are known
    return first


def _one(task: tuple[str, str, float, float, int, int, int, int]) -> dict[str, float]:
    _, kind, effect, share, runs, cap, seed, warmup = task
    first = _requests_to_detect(
        kind, effect, share, runs=runs, cap=cap, rng=np.random.default_rng(seed), warmup=warmup
    )
    return {name: float(np.quantile(v, 0.5, method="inverted_cdf")) for name, v in first.items()}


def ratios(
    mapper: Callable[..., Iterable[dict[str, float]]] = map,
    *,
    quick: bool = False,
    warmup: int = 0,
    effects: list[tuple[str, str, float]] = EFFECTS,
    shares: tuple[float, ...] = SHARES,
) -> dict[tuple[str, float, str], str]:
    """Median requests / optimum per (effect, share, strategy), formatted; with ``warmup``
    healthy scrapes before the fault (a late fault), requests count from the onset."""
    runs, cap = (100, 800) if quick else (400, 1500)
    tasks = [
        (label, kind, effect, share, runs, cap, 2024 + 100 * warmup + i, warmup)
        for i, (label, kind, effect, share) in enumerate(
            (label, kind, effect, share) for label, kind, effect in effects for share in shares
        )
    ]
    out: dict[tuple[str, float, str], str] = {}
    for (label, kind, effect, share, *_), medians in zip(tasks, mapper(_one, tasks), strict=True):
        if kind == "errors":
            kl = bernoulli_kl(effect, BASE_ERROR_RATE)
        else:
            kl = (effect / SIGMA) ** 2 / 2
        best = wald_expected_requests(kl)
        for name, median in medians.items():
            out[(label, share, name)] = (
                f"> {cap * BATCH}"
                if math.isinf(median)
                else f"{median:.0f} / {best:.0f} = {median / best:.2f}x"
            )
    return out


def table(found: dict[tuple[str, float, str], str]) -> str:
    """The requests table in Markdown."""
    rows = [
        "## Canary requests to detect (batches of 10 requests) vs Wald's SPRT optimum",
        "",
        "| effect | share | rollguard (vs stable) | rollguard (vs baseline) |",
        "|---|---|---|---|",
    ]
    for label, _, _ in EFFECTS:
        for share in SHARES:
            rows.append(
                f"| {label} | {share:.0%} | {found[(label, share, STABLE)]} "
                f"| {found[(label, share, BASELINE)]} |"
            )
    return "\n".join(rows)
