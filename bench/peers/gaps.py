"""Scrapes the benchmark's Prometheus missed or failed, read from its own ``up`` samples.

Under load a scrape may come late (the next sample more than 1.5 intervals
after the last), fail (``up`` 0: the exporter did not answer within the
timeout), or never happen. Every tool reads the same samples, so a gap shows
in all three; this counts them for a row, over the row's wall time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import httpx

JOB = "synthetic"
LATE = 1.5  # a sample this many intervals after the last one came late


@dataclass(frozen=True)
class Gaps:
    """One row's scrapes of the exporter."""

    expected: int  # wall time / interval
    recorded: int  # samples of up
    failed: int  # up == 0
    late: int  # gaps longer than LATE intervals
    longest: float  # seconds between two consecutive samples, at most
    slowest: float  # longest scrape_duration_seconds

    def sentence(self, interval: float, scale: float) -> str:
        return (
            f"{self.recorded} scrapes recorded of {self.expected} expected at every "
            f"{interval:g}s; {self.failed} failed, {self.late} came over {LATE:g} intervals "
            f"after the previous one (longest gap {self.longest:.1f}s wall, "
            f"{self.longest * scale:.0f}s scenario); slowest scrape {self.slowest:.2f}s"
        )


def _samples(prometheus: str, expression: str) -> list[tuple[float, float]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expression}, timeout=30)
    response.raise_for_status()
    result = response.json()["data"]["result"]
    if not result:
        return []
    return [(float(t), float(v)) for t, v in result[0]["values"]]


def scrape_gaps(prometheus: str, interval: float, seconds: float) -> Gaps:
    """The exporter's scrapes over the last ``seconds`` (every ``interval`` s expected)."""
    window = f"{max(1, round(seconds))}s"
    up = _samples(prometheus, f'up{{job="{JOB}"}}[{window}]')
    durations = _samples(prometheus, f'scrape_duration_seconds{{job="{JOB}"}}[{window}]')
    times = [t for t, _ in up]
    steps = [b - a for a, b in itertools.pairwise(times)]
    return Gaps(
        expected=round(seconds / interval),
        recorded=len(up),
        failed=sum(1 for _, v in up if v == 0),
        late=sum(1 for step in steps if step > LATE * interval),
        longest=max(steps, default=0.0),
        slowest=max((v for _, v in durations), default=0.0),
    )
