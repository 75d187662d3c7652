"""When a fault may begin: the weight a sequential test bets on each start.

A sequential trigger's e-value is ``S_t = sum_k w_k prod_{i=k..t} f_i``: the
e-process started at update ``k`` (the product of the factors since then),
weighted by ``w_k``, summed over every past start. Because the weights sum to
at most 1, ``S_t`` plus the weight not yet spent is a nonnegative
supermartingale, and the chance that it *ever* reaches ``1 / alpha`` on a
healthy canary is at most ``alpha`` (docs/detection.md). A fault that begins at
update ``k`` costs ``log(1 / w_k)`` nats of evidence; the schedule decides who
pays what:

- ``mixture`` (``horizon`` None): ``w_k = 1 / (k (k + 1))``. Half the bet is on
  the canary's first update; a later start costs ``log(k (k + 1))``, about
  twice the log of its index (8.2 nats five minutes into 5 s updates,
  11.8 nats at thirty).
- ``e-detector`` (``horizon`` = ``K`` updates): half on the first update again,
  the other half spread over the starts in the horizon as ``1 / (2 H_K k)``
  (``H_K`` the ``K``-th harmonic number), and past the horizon
  ``K / (2 H_K k (k - 1))``, which continues the same curve and sums to the
  rest. Scaled by ``2 H_K``, the starts inside the horizon weigh ``1 / k``: a
  Shiryaev-Roberts e-detector with a log-uniform prior on the onset. A start
  at update ``k <= K`` costs ``log(2 H_K k)``: 6.8 nats five minutes in and
  8.5 at thirty with a 60-minute horizon of 5 s updates. The sum is still 1,
  so the false-alarm bound holds however long the watch lasts, past the
  horizon included.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
from scipy import special

Array = npt.NDArray[np.float64]


@functools.cache  # one value per horizon, asked for at every update
def harmonic(count: int) -> float:
    """``H_K = 1 + 1/2 + ... + 1/K``."""
    return float(special.digamma(count + 1) + np.euler_gamma)


def log_start_weight(index: npt.ArrayLike, horizon: int | None = None) -> Array:
    """log w_k: the prior weight of "the fault began at update k" (k counts from 1).

    ``horizon`` None is the ``mixture`` schedule, an integer ``K >= 1`` the
    ``e-detector`` one; both sum to exactly 1 over k = 1, 2, ...
    """
    k = np.asarray(index, dtype=float)
    if horizon is None:
        mixture: Array = -(np.log(k) + np.log1p(k))
        return mixture
    spread = np.log(2.0 * harmonic(horizon))
    inside = -(spread + np.log(k))
    with np.errstate(divide="ignore"):  # k = 1 takes the first branch; log(0) is unused
        beyond = np.log(horizon) - spread - np.log(k) - np.log(k - 1.0)
    out: Array = np.where(k <= 1, np.log(0.5), np.where(k <= horizon, inside, beyond))
    return out


def onset_cost(index: npt.ArrayLike, horizon: int | None = None) -> Array:
    """Nats of evidence a fault beginning at update ``index`` pays for not being known."""
    out: Array = -log_start_weight(index, horizon)
    return out
