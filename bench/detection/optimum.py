"""The optimum a detector is held to, counted in canary requests, three ways.

Wald's SPRT with alpha = beta = 0.01 needs on average ``a / KL`` observations,
where ``KL`` is the information one observation carries against the nearest
null. Which null, and what one observation shows, sets three yardsticks:

- **literal**: the issue's: a known baseline, every request's exact latency,
  no tolerance (error 1% vs the bad rate; a normal shift of log-latency);
- **measured**: what a detector can actually see: latency only through the
  histogram's buckets, and against a stable version whose rate must be
  measured at the same time (the nearest null is then "canary = stable" at
  the rate closest to both, the KL projection);
- **tolerated**: the measured one, against the policy's tolerated null
  (``canary <= ratio x reference + points``) rather than "canary = reference".

Each is a lower bound no test can beat on average; the gaps between them say
where a detector's requests go.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize, special

from bench.detection.simulate import BASE_ERROR_RATE, SIGMA, cells

WALD_A = 0.99 * math.log(0.99 / 0.01) + 0.01 * math.log(0.01 / 0.99)
TINY = 1e-15


def wald_expected_requests(kl: float) -> float:
    """Wald's approximation of the SPRT's expected sample size (alpha = beta = 0.01)."""
    return WALD_A / kl if kl > 0 else math.inf


def bernoulli_kl(p1: float, p0: float) -> float:
    return p1 * math.log(p1 / p0) + (1 - p1) * math.log((1 - p1) / (1 - p0))


def multinomial_kl(q: np.ndarray, p: np.ndarray) -> float:
    keep = q > 0
    return float(np.sum(q[keep] * np.log(q[keep] / np.maximum(p[keep], TINY))))


def literal_kl(kind: str, effect: float) -> float:
    """Per request: error rate ``effect`` vs 1%, or a log-latency shift of ``effect``."""
    if kind == "errors":
        return bernoulli_kl(effect, BASE_ERROR_RATE)
    return (effect / SIGMA) ** 2 / 2


def measured_kl(kind: str, effect: float, share: float, reference: str) -> float:
    """Per canary request, through the buckets, and vs a stable measured side by side.

    With ``k`` stable requests per canary request the nearest null is both versions
    at the pooled distribution ``(q + k p) / (1 + k)``; its KL is the information.
    """
    k = (1 - share) / share
    if kind == "errors":
        if reference == "baseline":
            return literal_kl(kind, effect)
        pooled = (effect + k * BASE_ERROR_RATE) / (1 + k)
        return bernoulli_kl(effect, pooled) + k * bernoulli_kl(BASE_ERROR_RATE, pooled)
    q, p = cells(effect)[0], cells(0.0)[0]
    if reference == "baseline":
        return multinomial_kl(q, p)
    mix = (q + k * p) / (1 + k)
    return multinomial_kl(q, mix) + k * multinomial_kl(p, mix)


def tolerated_kl(
    kind: str, effect: float, share: float, reference: str, *, ratio: float, fraction: float
) -> float:
    """Per canary request, against the nearest null the policy's tolerance allows."""
    k = (1 - share) / share
    if kind == "errors":
        if reference == "baseline":
            allowed = ratio * BASE_ERROR_RATE + fraction
            return bernoulli_kl(effect, allowed) if effect > allowed else 0.0

        def cost(rate: float) -> float:
            canary = min(effect, ratio * rate + fraction)
            return bernoulli_kl(effect, canary) + k * bernoulli_kl(BASE_ERROR_RATE, rate)

        found = optimize.minimize_scalar(
            cost, bounds=(TINY, effect), method="bounded", options={"xatol": 1e-12}
        )
        return float(found.fun)
    q, p = _merge_rare(cells(effect)[0], cells(0.0)[0])
    return _tolerated_latency_kl(q, p, k, reference, ratio=ratio, fraction=fraction)


def _merge_rare(q: np.ndarray, p: np.ndarray, floor: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Fold outer cells that neither distribution reaches into their inner neighbour.

    They carry under ``floor`` nats yet make the constrained solver's steps singular.
    """
    q, p = q.copy(), p.copy()
    while len(q) > 2 and max(q[0], p[0]) < floor:
        q, p = np.concatenate([[q[0] + q[1]], q[2:]]), np.concatenate([[p[0] + p[1]], p[2:]])
    while len(q) > 2 and max(q[-1], p[-1]) < floor:
        q, p = np.concatenate([q[:-2], [q[-2] + q[-1]]]), np.concatenate([p[:-2], [p[-2] + p[-1]]])
    return q, p


def _tolerated_latency_kl(
    q: np.ndarray, p: np.ndarray, k: float, reference: str, *, ratio: float, fraction: float
) -> float:
    """KL projection onto the cells whose tail above every boundary is within tolerance.

    Against a baseline, only the canary's cells ``a`` move: ``tail(a) <= ratio
    tail(p) + fraction``. Against the stable, both move: ``tail(a) <= ratio
    tail(b) + fraction``, paying ``k KL(p || b)`` for the stable's. Cells are
    softmax weights, so every step stays a distribution.
    """
    size = len(q)
    above = np.triu(np.ones((size - 1, size)), k=1)  # row j sums the cells above boundary j
    both = reference != "baseline"

    def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return special.softmax(x[:size]), (special.softmax(x[size:]) if both else p)

    def objective(x: np.ndarray) -> float:
        a, b = split(x)
        return multinomial_kl(q, a) + (k * multinomial_kl(p, b) if both else 0.0)

    def room(x: np.ndarray) -> np.ndarray:
        a, b = split(x)
        out: np.ndarray = ratio * (above @ b) + fraction - above @ a
        return out

    start = np.log(np.maximum(p, TINY))
    found = optimize.minimize(
        objective,
        np.concatenate([start, start]) if both else start,
        constraints=[{"type": "ineq", "fun": room}],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 3000},
    )
    if np.min(room(found.x)) < -1e-9:
        raise RuntimeError(f"KL projection left the tolerated set: {found.message}")
    # a feasible point that is not quite the minimum overstates the information: the
    # optimum printed is then, if anything, harder to reach
    return max(float(found.fun), 0.0)


@functools.cache  # the table and the goals ask for the same cells; each solve takes seconds
def optima(
    kind: str, effect: float, share: float, reference: str, *, ratio: float, fraction: float
) -> dict[str, float]:
    """The three yardsticks, in canary requests."""
    return {
        "literal": wald_expected_requests(literal_kl(kind, effect)),
        "measured": wald_expected_requests(measured_kl(kind, effect, share, reference)),
        "tolerated": wald_expected_requests(
            tolerated_kl(kind, effect, share, reference, ratio=ratio, fraction=fraction)
        ),
    }
