"""Whether each sequential test's window holds enough scrapes to be fed.

A sequential trigger is fed the counts of one analysis interval
(``analysis.interval``, :mod:`rollguard.engine.sequential_rules`). Counters
only say how much they grew between two samples, so a window with too few
samples gives no count, and that interval is judged by the trigger's
threshold rule instead. How many a window needs depends on the source:

- Prometheus: rollguard counts from each series' last sample before the
  window (:mod:`rollguard.metrics.growth`), so one sample inside it is
  enough; evaluations are not aligned with scrapes, so an interval of one
  scrape interval loses a window whenever a scrape is late, while two always
  hold one (and the two a custom ratio signal's own ``increase()`` needs).
- the scrape source: rollguard keeps the last scrape before the window as its
  starting point, so one scrape inside the window is enough; it scrapes at
  each evaluation unless the last scrape is less than half its
  ``scrape_interval`` old, so an interval shorter than that half leaves
  some windows with no scrape inside.

Where rollguard can know the scrape interval (the scrape source's own, a
Prometheus source's ``scrape_interval``, or Prometheus' global one, asked at
the start of a watch), a too-short interval is said before the first
evaluation, as a warning: the watch still runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollguard.engine.sequential_rules import is_sequential
from rollguard.policy.model import Policy, PrometheusSource, ScrapeSource
from rollguard.policy.triggers import supports_sequential


@dataclass(frozen=True)
class Cadence:
    """How often the source samples the counters, and where that figure came from."""

    seconds: float
    source: str  # e.g. "metrics.scrape_interval", "Prometheus' global scrape_interval"
    #: Scrape intervals one window must span: 2 for Prometheus (a sample in every window
    #: however scrapes fall), 1/2 for the scrape source (which scrapes at each evaluation,
    #: at most every half scrape interval).
    needed: float = 2.0


_SPANS = {2.0: "two scrape intervals", 0.5: "half a scrape interval"}


def policy_cadence(policy: Policy) -> Cadence | None:
    """The cadence the policy itself states, or None (ask the source, or nothing known)."""
    source = policy.metrics
    if isinstance(source, ScrapeSource):
        return Cadence(source.scrape_interval, "metrics.scrape_interval", needed=0.5)
    if isinstance(source, PrometheusSource) and source.scrape_interval is not None:
        return Cadence(source.scrape_interval, "metrics.scrape_interval")
    return None


def thin_windows(policy: Policy, cadence: Cadence) -> dict[str, str]:
    """Each sequential trigger whose window holds too few scrapes, with a sentence saying so."""
    interval = policy.analysis.interval
    shortest = cadence.needed * cadence.seconds
    if interval >= shortest * (1 - 1e-9):
        return {}
    scrapes = _SPANS.get(cadence.needed, f"{cadence.needed:g} scrape intervals")
    found = {}
    for rule in policy.rules:
        if not is_sequential(rule) or not supports_sequential(rule.signal):
            continue
        found[rule.name] = (
            f"its sequential test is fed each {interval:g}s analysis interval, shorter than "
            f"{scrapes} ({shortest:g}s at {cadence.source} {cadence.seconds:g}s): some or all "
            "intervals will have too few samples and be judged by its threshold rule; "
            f"set analysis.interval to {shortest:g}s or more"
        )
    return found
