"""How long ``rollguard serve`` takes to render ``/metrics`` for 1,000 deployments.

    python bench/serve_metrics.py [--deployments 1000] [--repeat 20] [--profile]

Fills the server's :class:`~rollguard.server.telemetry.Telemetry` as 1,000
watched deployments would (the three seed triggers of bench/serve.py: five
signal values, three trigger limits, the canary weight, the evaluation and
decision counters, a rollback for one in twenty, the evaluation histogram),
then times the render ``/metrics`` does, next to prometheus_client's
``generate_latest`` on the same registry, and checks both give the same bytes.
``--profile`` prints cProfile's top functions of one render.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest  # noqa: E402

from rollguard.engine.decision import (  # noqa: E402
    Decision,
    Evidence,
    TriggerResult,
    TriggerStatus,
    Verdict,
)
from rollguard.engine.evaluate import Evaluation  # noqa: E402
from rollguard.engine.state import EngineState  # noqa: E402
from rollguard.policy.actions import Action, Severity  # noqa: E402
from rollguard.server.telemetry import Telemetry  # noqa: E402

#: (trigger, signal, canary value, stable reference or None, limit) of bench/serve.py's policy.
TRIGGERS = (
    ("error_rate", "error_rate_percent", 0.5, None, 5.0),
    ("latency", "latency_p95_ms", 125.0, 120.0, 156.0),
    ("memory", "memory_mb", 305.0, 300.0, 350.0),
)


def evaluation(n: int) -> Evaluation:
    """One evaluation of deployment ``n``: every trigger OK, values varying by deployment."""
    results = tuple(
        TriggerResult(
            trigger=trigger,
            status=TriggerStatus.OK,
            action=Action.IMMEDIATE_ROLLBACK,
            severity=Severity.CRITICAL,
            evidence=Evidence(
                trigger=trigger,
                signal=signal,
                value=value + n % 7 + 0.25,
                limit=limit + n % 3,
                threshold=limit,
                comparison="gt",
                window_seconds=60,
                reference=reference,
                reference_source="stable" if reference is not None else None,
            ),
        )
        for trigger, signal, value, reference, limit in TRIGGERS
    )
    decision = Decision(Verdict.CONTINUE, Action.CONTINUE, None, "healthy", Severity.INFO)
    return Evaluation(at=0.0, decision=decision, results=results, state=EngineState())


def evaluate_all(telemetry: Telemetry, deployments: int, shift: int = 0) -> None:
    """One more evaluation of every deployment: every series gets a new value."""
    for n in range(deployments):
        telemetry.observe(f"d{n:04}", evaluation(n + shift), 0.0004 * (n % 50))


def filled(deployments: int) -> Telemetry:
    """Telemetry as ``serve`` leaves it after every deployment was evaluated a few times."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # as serve does
    telemetry = Telemetry(CollectorRegistry())
    for n in range(deployments):
        name = f"d{n:04}"
        for _ in range(3):
            telemetry.observe(name, evaluation(n), 0.0004 * (n % 50))
        telemetry.weight(name, 20 if n % 20 else 0)
        if n % 20 == 0:
            telemetry.rolled_back(name, "immediate_rollback", "error_rate")
    telemetry.policy_failed("broken.yaml", failed=True)
    return telemetry


def timed(
    render: Callable[[], bytes], repeat: int, before: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Median and best seconds of ``repeat`` renders (``before`` each, untimed)."""
    samples = []
    for _ in range(repeat):
        if before is not None:
            before()
        began = time.perf_counter()
        render()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples), min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="cProfile one render")
    args = parser.parse_args()
    telemetry = filled(args.deployments)
    ours = getattr(telemetry, "render", None) or (lambda: generate_latest(telemetry.registry))
    body = ours()
    reference = generate_latest(telemetry.registry)
    if body != reference:
        raise SystemExit("the rendered exposition differs from generate_latest's")
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(ours)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(15)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(f"{args.deployments} deployments, {series} series, {len(body) / 1024:.0f} KiB")
    shifts = iter(range(1, 10**6))

    def change_everything() -> None:
        evaluate_all(telemetry, args.deployments, next(shifts))

    for label, render, before in (
        ("prometheus_client generate_latest", lambda: generate_latest(telemetry.registry), None),
        ("/metrics render", ours, None),
        ("/metrics render, every value changed", ours, change_everything),
    ):
        median, best = timed(render, args.repeat, before)
        print(f"{label:38} median {median * 1000:7.1f} ms   best {best * 1000:7.1f} ms")
    change_everything()
    if ours() != generate_latest(telemetry.registry):
        raise SystemExit("after changes, the rendered exposition differs from generate_latest's")


if __name__ == "__main__":
    main()
