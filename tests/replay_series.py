"""Replay CSVs with latency histogram buckets, drawn from log-normal latencies.

Each row's latencies are sampled one by one (numpy, seeded) and counted into
Prometheus' default buckets, so the bucket columns are what a real histogram
would have recorded: the tests then check what rollguard makes of them, not
numbers written to match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

#: Prometheus client libraries' default histogram buckets, in seconds.
DEFAULT_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def bucket_column(bound: float) -> str:
    """The CSV column for a bound, spelled like a Prometheus ``le`` label."""
    return "le_+Inf" if bound == float("inf") else f"le_{bound:g}"


def cumulative_counts(
    latencies_seconds: npt.NDArray[np.float64], bounds: tuple[float, ...] = DEFAULT_BOUNDS
) -> list[int]:
    """How many latencies are ≤ each bound, then all of them (the ``+Inf`` bucket)."""
    ordered = np.sort(latencies_seconds)
    finite = np.searchsorted(ordered, np.asarray(bounds), side="right")
    return [int(count) for count in finite] + [len(ordered)]


def write_bucket_series(
    path: Path,
    *,
    canary_slowdown: float = 1.0,
    slow_after: float = 0.0,
    seed: int = 11,
    step_seconds: int = 5,
    end_seconds: int = 300,
    stable_requests: int = 2000,
    canary_requests: int = 500,
    median_seconds: float = 0.1,
    sigma: float = 0.5,
    error_share: float = 0.01,
) -> Path:
    """Write stable and canary rows; canary latencies x ``canary_slowdown`` after ``slow_after``.

    Both versions fail ``error_share`` of their requests, so only latency differs.
    """
    rng = np.random.default_rng(seed)
    columns = [bucket_column(bound) for bound in (*DEFAULT_BOUNDS, float("inf"))]
    lines = [",".join(["time", "version", "requests", "errors", "memory_mb", *columns])]
    mu = float(np.log(median_seconds))
    for t in range(step_seconds, end_seconds + 1, step_seconds):
        for version, requests in (("stable", stable_requests), ("canary", canary_requests)):
            latencies = rng.lognormal(mu, sigma, size=requests)
            if version == "canary" and t > slow_after:
                latencies = latencies * canary_slowdown
            errors = rng.binomial(requests, error_share)
            counts = cumulative_counts(latencies)
            cells = [str(t), version, str(requests), str(errors), "200", *map(str, counts)]
            lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path
