"""Latency evidence from every histogram bucket at once: is the canary's latency shifted up?

The per-boundary tests of :mod:`rollguard.engine.sequential_latency` each look
at one bucket boundary, so a mixture over a dozen boundaries pays for all of
them. A release that slows responses down moves requests up across *all*
buckets together; this factor weighs every bucket in one statistic.

In an interval with ``n_c`` canary and ``n_s`` stable requests, each request
is the canary's with probability ``π = n_c / (n_c + n_s)`` whatever bucket it
lands in, when both versions have the same latency distribution. The
alternative tilts that probability up in slow buckets:
``logit π_j = logit π + λ s_j``, where ``s_j`` is bucket ``j``'s normal score
(the standard normal quantile at its mid-rank among the stable's earlier
requests). For normal log-latencies, ``λ`` is the canary's shift in standard
deviations, so the grid :data:`SHIFT` reads as "0.02 to 5 standard deviations
slower".

Under the null with the policy's tolerance (at every boundary, the canary's
share above it ≤ ``r`` times the stable's + ``d``) the factor's expectation is
at most ``exp(N (max(r - 1, 0) + d) (π_max - π_min))`` (see
docs/detection.md), so the factor divides by exactly that. Scores use only
earlier intervals, so they are fixed before the interval they judge, and
they stop growing beyond the ``d`` quantiles, where the tolerance could move
a whole tail.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special

from rollguard.engine.sequential import GRID_SIZE, Array

#: The alternatives: the canary slower by this many standard deviations (normal scores).
SHIFT: Array = np.geomspace(0.02, 5.0, GRID_SIZE)


def cells_from_tails(requests: npt.ArrayLike, slow: npt.ArrayLike) -> Array:
    """Requests per bucket, from the count above each boundary (last axis).

    Cell 0 is at or below the first boundary; the last cell is above the last one.
    """
    n = np.asarray(requests, dtype=float)[..., None]
    tails = np.asarray(slow, dtype=float)
    bounded = np.concatenate([n, tails, np.zeros_like(n)], axis=-1)
    out: Array = np.maximum(-np.diff(bounded, axis=-1), 0.0)
    return out


def normal_scores(seen: npt.ArrayLike, tolerance_fraction: float) -> Array:
    """Each bucket's normal score among ``seen`` (the stable's cells so far).

    Mid-ranks are kept within ``[e, 1 - e]``, ``e`` the tolerance ``d`` or half a
    request, whichever is larger. Scores are non-decreasing; with nothing seen
    they are all zero, and the factor is then 1.
    """
    counts = np.asarray(seen, dtype=float)
    total = counts.sum(axis=-1, keepdims=True)
    safe = np.where(total > 0, total, 1.0)
    mid = (np.cumsum(counts, axis=-1) - counts / 2) / safe
    edge = np.maximum(tolerance_fraction, 0.5 / safe)
    scores: Array = special.ndtri(np.clip(mid, edge, 1 - edge))
    out: Array = np.where(total > 0, scores, 0.0)
    return out


def shift_log_factors(
    canary_cells: npt.ArrayLike,
    stable_cells: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    tolerance_ratio: float,
    tolerance_fraction: float,
) -> Array:
    """Log of one interval's tilt factor for each shift in :data:`SHIFT`; shape ``(..., GRID)``.

    Cells on the last axis; both versions must have requests.
    """
    c = np.asarray(canary_cells, dtype=float)[..., None]
    s = np.asarray(stable_cells, dtype=float)[..., None]
    n_c, n_s = c.sum(axis=-2), s.sum(axis=-2)
    total = n_c + n_s
    share = n_c / total
    log_share, log_rest = np.log(share), np.log1p(-share)
    logit = (log_share - log_rest)[..., None, :] + np.asarray(scores)[..., None] * SHIFT
    log_p, log_q = -np.logaddexp(0.0, -logit), -np.logaddexp(0.0, logit)
    likelihood = np.sum(
        c * (log_p - log_share[..., None, :]) + s * (log_q - log_rest[..., None, :]), axis=-2
    )
    p = np.exp(log_p)
    spread = p.max(axis=-2) - p.min(axis=-2)
    slack = max(tolerance_ratio - 1.0, 0.0) + tolerance_fraction
    out: Array = likelihood - total * slack * spread
    return out
