"""Engine throughput and CLI start-up time.

    python bench/engine.py

Prints evaluations per second for 1, 100 and 1,000 deployments with five
triggers each (the goal: 1,000 x 5 in under 100 ms on one core), and the wall
time of ``rollguard --help`` (goal: under 0.5 s).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rollguard.engine.evaluate import evaluate, required_queries  # noqa: E402
from rollguard.engine.state import EngineState  # noqa: E402
from rollguard.policy import parse_policy  # noqa: E402
from rollguard.signals import Measurement, Signal, Version  # noqa: E402

POLICY = """
target: {deployment: bench}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}
baseline: {compare_with: stable}
error_rate_trigger: {threshold: 5%, measurement_window: 5 minutes}
latency_trigger: {threshold: 30% increase from baseline, measurement_window: 3 minutes}
memory_trigger: {threshold: 50MB increase from baseline, measurement_window: 2 minutes}
cpu_trigger: {threshold: 90, window: 1m, action: scaling_and_rollback}
runtime_security: {unauthorized_access_attempts: 5 per minute}
"""

VALUES = {
    Signal.ERROR_RATE_PERCENT: 1.0,
    Signal.LATENCY_P95_MS: 210.0,
    Signal.MEMORY_MB: 300.0,
    Signal.CPU_PERCENT: 40.0,
    Signal.UNAUTHORIZED_PER_MINUTE: 0.0,
}


def engine_rate(deployments: int, rounds: int) -> tuple[float, float]:
    """(median ms per round of all deployments, evaluations per second)."""
    policy = parse_policy(POLICY)
    assert len(policy.rules) == 5
    queries = required_queries(policy)
    measurements = {
        q: Measurement.ok(
            q, 0.0, VALUES[q.signal] * (0.9 if q.version is Version.STABLE else 1.0), requests=1000
        )
        for q in queries
    }
    states = [EngineState() for _ in range(deployments)]
    timings = []
    for round_number in range(rounds):
        began = time.perf_counter()
        for index in range(deployments):
            states[index] = evaluate(
                policy, measurements, baseline=None, state=states[index], now=float(round_number)
            ).state
        timings.append(time.perf_counter() - began)
    median = statistics.median(timings)
    return median * 1000, deployments / median


def help_time(runs: int = 5) -> float:
    """Median wall seconds of ``python -m rollguard --help``."""
    timings = []
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "rollguard", "--help"], check=True, capture_output=True, env=env
        )
        timings.append(time.perf_counter() - began)
    return statistics.median(timings)


def main() -> None:
    print("| deployments | triggers each | ms per round (median) | evaluations/s |")
    print("| ---: | ---: | ---: | ---: |")
    for deployments, rounds in ((1, 2000), (100, 50), (1000, 10)):
        ms, rate = engine_rate(deployments, rounds)
        print(f"| {deployments:,} | 5 | {ms:.2f} | {rate:,.0f} |")
    print(f"\n`rollguard --help` wall time (median of 5): {help_time():.3f} s")


if __name__ == "__main__":
    main()
