"""Measurements for the promotion test built by hand: counts of requests, errors and,
for a latency signal, a histogram with ``slow`` of the requests above 0.25 s."""

from __future__ import annotations

import math

from rollguard.engine import promotion
from rollguard.policy import Policy
from rollguard.signals import Measurement, Query, Signal, Version


def measure(
    policy: Policy, now: float, canary: tuple[int, int], stable: tuple[int, int], slow: float = 0.04
) -> dict[Query, Measurement]:
    out: dict[Query, Measurement] = {}
    for query in promotion.queries(policy):
        requests, errors = canary if query.version is Version.CANARY else stable
        if query.signal is Signal.REQUESTS:
            out[query] = Measurement.ok(query, now, requests, requests=requests)
        elif query.signal is Signal.ERRORS:
            out[query] = Measurement.ok(query, now, errors, requests=requests)
        else:
            fast = requests - round(requests * slow)
            buckets = {0.1: fast * 0.5, 0.25: fast, 0.5: requests, math.inf: requests}
            out[query] = Measurement.ok(query, now, requests, requests=requests, buckets=buckets)
    return out
