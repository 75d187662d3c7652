"""A canary's traffic share approximated by pod counts, for Kubernetes without a router.

Behind one Service whose selector matches the pods of both the canary and the
stable Deployment, each ready pod takes about an equal part of the requests, so
the canary's share is its part of the pods. A fixed number of pods, ``total``,
is divided between the two: the canary gets ``total x percent / 100`` rounded
half up, at least one pod for any share above 0 % (a canary without a pod
gathers no evidence) and at most ``total - 1`` below 100 % (stable keeps a pod
until the last step). The share achieved is ``canary / total``, often not the
one asked: with 4 pods, 10 % is 0.4 of a pod, so the canary gets 1 (25 %).
Pure functions; the executor reads and writes the counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Split:
    """Pods for each version, and the share of traffic that gives the canary."""

    canary: int
    stable: int

    @property
    def total(self) -> int:
        return self.canary + self.stable

    @property
    def achieved_weight(self) -> float:
        """The canary's share of the pods, percent, to one decimal."""
        return round(100 * self.canary / self.total, 1) if self.total else 0.0

    def as_dict(self) -> dict[str, int]:
        return {"canary": self.canary, "stable": self.stable, "total": self.total}


def split(total: int, percent: int) -> Split | str:
    """The pods for a canary share of ``percent`` out of ``total``, or why it cannot be done."""
    if percent in (0, 100):
        return Split(canary=total * percent // 100, stable=total - total * percent // 100)
    if total < 2:
        return (
            f"a {percent}% canary share by replica counts needs at least 2 pods in all "
            f"(one per version); the two Deployments have {total}"
        )
    canary = min(max(math.floor(total * percent / 100 + 0.5), 1), total - 1)
    return Split(canary=canary, stable=total - canary)
