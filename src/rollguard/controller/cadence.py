"""What a watch says before it starts about windows too short for their sequential test.

The rule is :mod:`rollguard.engine.cadence`; this asks the source for the
scrape interval when the policy does not state it (Prometheus' global one).
"""

from __future__ import annotations

from rollguard.engine import cadence
from rollguard.metrics.base import Provider
from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.policy.model import Policy


async def thin_windows(policy: Policy, provider: Provider) -> dict[str, str]:
    """Each sequential trigger whose window holds too few scrapes, with why (none if unknown)."""
    found = cadence.policy_cadence(policy)
    if found is None and isinstance(provider, PrometheusProvider):
        seconds = await provider.global_scrape_interval()
        if seconds is not None:
            found = cadence.Cadence(seconds, "Prometheus' global scrape_interval")
    return {} if found is None else cadence.thin_windows(policy, found)
