"""The detection benchmark: time to detect and false-rollback rate, per scenario and strategy.

Run from the repository root: ``python -m bench.detection`` (``--quick`` for a
smoke run). Prints the tables and writes them to ``bench/detection/RESULTS.md``;
``--part late`` runs the e-detector against the mixture on faults 1, 5 and 30
minutes in instead and writes ``bench/detection/RESULTS-late.md``.
Nothing here is tuned to these scenarios: rollguard runs with the policy's
defaults (alpha 0.01 for the whole policy, tolerance 1.2 x stable + 0.1 points).
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402

from bench.detection import changepoint, finegrained, late  # noqa: E402
from bench.detection.core import (  # noqa: E402
    api_and_kernels,
    fmt_seconds,
    optimum_requests,
    simulate_rollguards,
    simulate_task,
    wilson,
)
from bench.detection.simulate import SIGMA, Scenario  # noqa: E402
from bench.detection.strategies import ERRORS  # noqa: E402

BAD_SECONDS = 600.0  # the maximum canary duration
HEALTHY_SECONDS = 1200.0
WATCH_SECONDS = 3600.0  # the 60-minute watch of the change-point goals
RATES = (10.0, 100.0, 1000.0)
SHARES = (0.05, 0.2, 0.5)
FAULTS: list[tuple[str, dict[str, float | str]]] = [
    ("errors 1%->2%", {"fault": "errors", "error_rate": 0.02}),
    ("errors 1%->5%", {"fault": "errors", "error_rate": 0.05}),
    ("errors 1%->10%", {"fault": "errors", "error_rate": 0.10}),
    ("latency +10%", {"fault": "latency", "log_shift": math.log(1.1)}),
    ("latency +0.25sd", {"fault": "latency", "log_shift": 0.25 * SIGMA}),
    ("latency +30%", {"fault": "latency", "log_shift": math.log(1.3)}),
    ("latency +100%", {"fault": "latency", "log_shift": math.log(2.0)}),
    ("memory leak 0.5MB/s", {"fault": "memory", "leak_mb_per_s": 0.5}),
]
NOISES = ("bursty", "diurnal", "incident", "shifting")


def check_same_code_path() -> str:
    """The vectorized kernels and the per-trigger API must give the same e-value, with
    either detector."""
    gaps = []
    for horizon in (None, ERRORS.horizon):
        evidence, kernel = api_and_kernels(horizon)
        gaps.append(abs(kernel - evidence["log_e_value"]))
    if max(gaps) > 1e-9:
        raise SystemExit(f"kernel and per-trigger API disagree by {max(gaps)}")
    return f"kernel = per-trigger API, mixture and e-detector (|difference| {max(gaps):.1e})"


Found = dict[tuple[str, float, float, str], tuple[float, float]]


def bad_table(
    out: Callable[..., None],
    ratios: dict[tuple[str, float, str], str],
    bad_runs: int,
    mapper: Callable[..., Iterable[dict[str, np.ndarray]]],
) -> Found:
    """Every bad-release scenario, every strategy: {(label, rps, share, strategy): (median s,
    detected share)}."""
    out("## Bad releases (time to detect, seconds after the canary starts)")
    out()
    out(
        "| scenario | rps | share | strategy | median s | p90 s | detected in 10 min "
        "| optimum s | median requests / optimum |"
    )
    out("|---|---|---|---|---|---|---|---|---|")
    seed = 0
    found: Found = {}
    tasks: list[tuple[Scenario, int, int]] = []
    for label, fault in FAULTS:
        for rps in RATES:
            for share in SHARES:
                seed += 1
                scenario = Scenario(
                    label,
                    rps,
                    share,
                    BAD_SECONDS,
                    **fault,  # type: ignore[arg-type]
                )
                tasks.append((scenario, bad_runs, seed))
    for (scenario, _, _), fired in zip(tasks, mapper(simulate_task, tasks), strict=True):
        label, rps, share = scenario.name, scenario.canary_rps, scenario.share
        best = optimum_requests(scenario)
        for name, seconds in fired.items():
            median = float(np.quantile(seconds, 0.5, method="inverted_cdf"))
            p90 = float(np.quantile(seconds, 0.9, method="inverted_cdf"))
            detected = float(np.mean(seconds <= BAD_SECONDS))
            ratio = ratios.get((label, share, name), "")
            opt = f"{best / rps:.2f}" if best else "—"
            out(
                f"| {label} | {rps:g} | {share:.0%} | {name} | {fmt_seconds(median)} "
                f"| {fmt_seconds(p90)} | {detected:.1%} | {opt} | {ratio} |"
            )
            found[(label, rps, share, name)] = (median, detected)
    return found


def healthy_table(
    out: Callable[..., None],
    healthy_runs: int,
    mapper: Callable[..., Iterable[dict[str, np.ndarray]]],
    *,
    seconds: float = HEALTHY_SECONDS,
    task: Callable[[tuple[Scenario, int, int]], dict[str, np.ndarray]] = simulate_task,
) -> dict[str, tuple[int, int]]:
    """False rollbacks per noise kind, pooled over traffic and share."""
    seed = 1000 if seconds == HEALTHY_SECONDS else 3000
    out()
    out(
        f"## Healthy releases (A/A), {seconds / 60:.0f}-minute watches: false-rollback "
        "rate, all triggers together"
    )
    out()
    out("| noise | strategy | false rollbacks | runs | rate | 95% interval (Wilson) |")
    out("|---|---|---|---|---|---|")
    pooled: dict[str, list[int]] = {}
    tasks: list[tuple[Scenario, int, int]] = []
    for noise in NOISES:
        shares = (0.05,) if noise == "shifting" else SHARES
        runs = healthy_runs * len(SHARES) // len(shares)
        for rps in RATES:
            for share in shares:
                seed += 1
                scenario = Scenario(noise, rps, share, seconds, noise=noise)
                tasks.append((scenario, runs, seed))
    by_noise: dict[str, dict[str, list[int]]] = {noise: {} for noise in NOISES}
    for (scenario, runs, _), fired in zip(tasks, mapper(task, tasks), strict=True):
        counts = by_noise[scenario.noise]
        for name, firings in fired.items():
            counts.setdefault(name, [0, 0])
            counts[name][0] += int(np.sum(np.isfinite(firings)))
            counts[name][1] += runs
    for noise, counts in by_noise.items():
        for name, (hits, n) in counts.items():
            low, high = wilson(hits, n)
            out(f"| {noise} | {name} | {hits} | {n} | {hits / n:.2%} | {low:.2%} - {high:.2%} |")
            pooled.setdefault(name, [0, 0])
            pooled[name][0] += hits
            pooled[name][1] += n
    for name, (hits, n) in pooled.items():
        low, high = wilson(hits, n)
        out(f"| **all** | {name} | {hits} | {n} | {hits / n:.2%} | {low:.2%} - {high:.2%} |")
    return {name: (hits, n) for name, (hits, n) in pooled.items()}


def goals(
    out: Callable[..., None],
    found: Found,
    pooled: dict[str, tuple[int, int]],
    medians: dict[finegrained.Key, finegrained.Detected],
) -> None:
    """The issue's goals, each with the measured figure."""
    out("## Goals")
    out()
    hits, n = pooled["rollguard"]
    low, high = wilson(hits, n)
    out(
        f"- False rollbacks, all triggers, all healthy runs: {hits}/{n} = {hits / n:.2%} "
        f"(95% {low:.2%} - {high:.2%}); goal <= 1%."
    )
    for label in ("errors 1%->5%", "errors 1%->10%", "latency +0.25sd"):
        for name, reference in finegrained.TESTS:
            cells = "; ".join(
                f"{share:.0%}: {finegrained.yardsticks(medians, label, share, name, reference)}"
                for share in SHARES
            )
            out(
                f"- {label}, {name} vs {reference}, median requests / optimum "
                f"(literal, measured, tolerated) by canary share: {cells}; goal <= 2x."
            )
    for rival in ("seed rules", "Flagger", "Argo Rollouts", "Kayenta MWU"):
        speedups = []
        for (label, rps, share, name), (median, detected) in found.items():
            if name != "rollguard" or detected < 0.5:
                continue
            theirs = found[(label, rps, share, rival)][0]
            speedups.append(theirs / median)
        finite = [x for x in speedups if math.isfinite(x)]
        never = len(speedups) - len(finite)
        r_hits, r_n = pooled[rival]
        out(
            f"- vs {rival} (false rollbacks {r_hits / r_n:.1%}): median speed-up "
            f"{np.median(finite) if finite else float('nan'):.1f}x, smallest "
            f"{min(finite) if finite else float('nan'):.1f}x over {len(finite)} scenarios "
            f"both detect; {never} scenarios only rollguard detects; goal >= 20x."
        )
    misses = [
        f"{label} @ {rps:g} rps {share:.0%} ({detected:.1%})"
        for (label, rps, share, name), (_, detected) in found.items()
        if name == "rollguard" and rps >= 100 and detected < 0.99
    ]
    out(
        "- Detected in 10 min at >= 100 rps, every bad scenario: "
        + ("yes" if not misses else "no: " + "; ".join(misses))
        + "; goal >= 99%."
    )


def from_start(
    out: Callable[..., None],
    found: Found,
    pooled: dict[str, tuple[int, int]],
    medians: dict[finegrained.Key, finegrained.Detected],
) -> None:
    """The issue's "no worse than today for faults present from the start": the
    e-detector (as shipped) against the mixture (before), on the same scrapes."""
    new, old = finegrained.STABLE, finegrained.MIXTURE
    out("## Faults present from the start: e-detector vs mixture")
    out()
    slower: list[str] = []
    faster = same = 0
    for (label, rps, share, name), (median, _) in found.items():
        if name != new:
            continue
        before = found[(label, rps, share, old)][0]
        if median > before:
            slower.append(
                f"{label} @ {rps:g} rps {share:.0%} ({fmt_seconds(median)} vs "
                f"{fmt_seconds(before)} s)"
            )
        elif median < before:
            faster += 1
        else:
            same += 1
    out(
        f"- Median seconds to detect, {len(slower) + faster + same} bad scenarios: the same "
        f"in {same}, e-detector faster in {faster}, slower in {len(slower)}"
        + (": " + "; ".join(slower) if slower else "")
        + "."
    )
    ratios = [
        found_new.median / medians[(label, share, old)].median
        for (label, share, name), found_new in medians.items()
        if name == new and math.isfinite(found_new.median)
    ]
    out(
        f"- Median canary requests to detect (small batches, {len(ratios)} cells): "
        f"e-detector / mixture {min(ratios):.2f}x to {max(ratios):.2f}x "
        f"(median {float(np.median(ratios)):.2f}x)."
    )
    for name in (new, old):
        hits, n = pooled[name]
        low, high = wilson(hits, n)
        out(
            f"- {name}: false rollbacks {hits}/{n} = {hits / n:.2%} (95% {low:.2%} - "
            f"{high:.2%}) over {HEALTHY_SECONDS / 60:.0f}-minute healthy watches."
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few runs, for a smoke test")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--part",
        choices=("main", "late"),
        default="main",
        help="main: every strategy, faults from the start and 5 minutes in; late: the "
        "e-detector vs the mixture, faults 1, 5 and 30 minutes in, 60-minute watches",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="default: bench/detection/RESULTS.md (RESULTS-late.md for --part late)",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        name = "RESULTS.md" if args.part == "main" else "RESULTS-late.md"
        args.output = str(Path(__file__).with_name(name))
    bad_runs, healthy_runs = (20, 40) if args.quick else (200, 200)
    late_runs = 20 if args.quick else 200
    started = time.monotonic()
    lines: list[str] = []

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    out("# Detection benchmark")
    out()
    out(f"{check_same_code_path()}; scrape interval 5 s; max canary duration {BAD_SECONDS:.0f} s;")
    out(f"{bad_runs} runs per bad scenario; healthy runs last {HEALTHY_SECONDS:.0f} s.")
    out()
    if args.part == "late":
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            _late_part(out, late_runs, healthy_runs, args.quick, pool.map)
        _finish(out, lines, started, args.output)
        return
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        medians = finegrained.measure(pool.map, quick=args.quick)
        ratios = finegrained.literal_ratios(medians)
        found = bad_table(out, ratios, bad_runs, pool.map)
        out()
        late_found = late.table(out, late_runs, pool.map, simulate_task)
        pooled = healthy_table(out, healthy_runs, pool.map)
        out()
        goals(out, found, pooled, medians)
        out()
        late.summary(out, late_found)
        out()
        from_start(out, found, pooled, medians)
    out()
    out(finegrained.table(medians, "100 runs per cell" if args.quick else "400 runs per cell"))
    _finish(out, lines, started, args.output)


def _late_part(
    out: Callable[..., None],
    late_runs: int,
    healthy_runs: int,
    quick: bool,
    mapper: Callable[..., Iterable[Any]],
) -> None:
    """Faults beginning 1, 5, 30 minutes in: the e-detector vs the mixture, and both on
    60-minute healthy watches."""
    late_cells = changepoint.run(mapper, late_runs)
    fine = changepoint.measure_requests(mapper, quick)
    watched = healthy_table(
        out, healthy_runs, mapper, seconds=WATCH_SECONDS, task=simulate_rollguards
    )
    out()
    changepoint.seconds_table(out, late_cells)
    out()
    changepoint.requests_table(out, fine)
    out()
    changepoint.goals(out, late_cells, watched)


def _finish(out: Callable[..., None], lines: list[str], started: float, output: str) -> None:
    out()
    cpu = sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )
    out(f"Whole run: {time.monotonic() - started:.0f} s wall time, {cpu:.0f} s CPU time.")
    Path(output).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
