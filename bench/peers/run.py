"""The real Argo Rollouts and Flagger next to rollguard: ``python -m bench.peers``.

Starts the real control plane (tools/kubernetes), both controllers
(tools/peers), a real Prometheus scraping the synthetic exporter, and runs
every row's scenarios, several runs at a time. Prints the table and writes it,
with every run's raw outcome, to ``bench/peers/RESULTS.md`` and
``bench/peers/results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "src", ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402
from kubernetes import client as k8s  # noqa: E402

from bench.detection.core import wilson  # noqa: E402
from bench.peers.harness import Case, Outcome, run_case  # noqa: E402
from bench.peers.manifests import ARGO, FLAGGER, TOOLS  # noqa: E402
from bench.peers.simulated import simulate  # noqa: E402
from bench.peers.suite import DOCUMENTED, SHORTEST, Row, cases, environment  # noqa: E402
from servers.kube_cluster import KubeCluster, running_kube_cluster  # noqa: E402

Result = tuple[Case, dict[str, Outcome]]


def run_row(
    row: Row,
    runs: tuple[int, int],
    *,
    jobs: int,
    cluster: KubeCluster,
    directory: Path,
    api: k8s.ApiClient,
) -> list[Result]:
    """Every case of ``row``, ``jobs`` at a time."""
    todo = cases(row, *runs)
    with environment(cluster, directory, row.scale, api) as env:

        def one(item: tuple[int, Case]) -> Result:
            index, case = item
            outcome = run_case(env, case, index)
            print(f"  {row.config.name} | {case.name}: " + _brief(outcome), flush=True)
            return case, outcome

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, enumerate(todo)))
    return results


def _brief(outcome: dict[str, Outcome]) -> str:
    def say(o: Outcome) -> str:
        if o.decided is not None:
            return f"{o.tool} decided {o.decided:.0f}s, stable {_s(o.recovered)}"
        return f"{o.tool} {'promoted' if o.promoted else 'no decision'} {o.note}".strip()

    return "; ".join(say(o) for o in outcome.values())


def _s(value: float | None) -> str:
    return "never" if value is None or math.isinf(value) else f"{value:.0f}s"


def _quantiles(values: list[float]) -> tuple[str, str]:
    if not values:
        return "—", "—"
    ordered = np.array(values)
    median = float(np.quantile(ordered, 0.5, method="inverted_cdf"))
    p90 = float(np.quantile(ordered, 0.9, method="inverted_cdf"))
    return _s(median), _s(p90)


def table(results: list[Result], out: Callable[[str], None]) -> None:
    """One line per row, scenario and tool."""
    out(
        "| settings | scenario | tool | runs | decided | decision median / p90 "
        "| back on stable median / p90 | false rollbacks (95% interval) |"
    )
    out("|---|---|---|---:|---:|---|---|---|")
    groups: dict[tuple[str, str, str], list[tuple[Case, Outcome]]] = {}
    for case, outcomes in results:
        for tool in TOOLS:
            key = (case.config.name, case.scenario.name, tool)
            groups.setdefault(key, []).append((case, outcomes[tool]))
    for (config, name, tool), items in groups.items():
        bad = items[0][0].scenario.fault is not None
        early = [o for c, o in items if o.decided is not None and o.decided < 0]
        watched = [o for c, o in items if not (o.decided is not None and o.decided < 0)]
        decided = [o.decided for o in watched if o.decided is not None]
        recovered = [
            o.recovered if o.recovered is not None else math.inf
            for o in watched
            if o.decided is not None
        ]
        false = len(early) if bad else len([o for _, o in items if o.decided is not None])
        low, high = wilson(false, len(items))
        fr = f"{false}/{len(items)} ({low:.0%}-{high:.0%})"
        if bad:
            rate = f"{len(decided)}/{len(watched)}" if watched else "—"
            d_med, d_p90 = _quantiles([*decided, *([math.inf] * (len(watched) - len(decided)))])
            r_med, r_p90 = _quantiles([*recovered, *([math.inf] * (len(watched) - len(decided)))])
            fr = fr if name.endswith("in") else "—"
        else:
            rate, d_med, d_p90, r_med, r_p90 = "—", "—", "—", "—", "—"
        out(
            f"| {config} | {name} | {tool} | {len(items)} | {rate} | {d_med} / {d_p90} "
            f"| {r_med} / {r_p90} | {fr} |"
        )


def pooled_false_rollbacks(results: list[Result], out: Callable[[str], None]) -> None:
    """Healthy runs of every kind together, per tool."""
    for tool in TOOLS:
        outcomes = [o[tool] for c, o in results if c.scenario.fault is None]
        if not outcomes:
            continue
        hits = sum(o.decided is not None for o in outcomes)
        low, high = wilson(hits, len(outcomes))
        out(
            f"- {tool}: {hits} false rollbacks in {len(outcomes)} healthy releases "
            f"({hits / len(outcomes):.0%}; 95% interval {low:.0%}-{high:.0%})"
        )


def twins(results: list[Result], out: Callable[[str], None]) -> None:
    """Each real peer next to its simulation on the same draws, per row and scenario."""
    out(
        "| settings | scenario | peer | real: decided, median | simulated: decided, median "
        "| same outcome | runs where the real one decided later |"
    )
    out("|---|---|---|---|---|---:|---:|")
    groups: dict[tuple[str, str, str], list[tuple[float | None, float | None]]] = {}
    for case, outcomes in results:
        simulated = simulate(case)
        for tool in (ARGO, FLAGGER):
            key = (case.config.name, case.scenario.name, tool)
            groups.setdefault(key, []).append((outcomes[tool].decided, simulated[tool]))
    for (config, name, tool), pairs in groups.items():
        real = [r for r, _ in pairs]
        sim = [s for _, s in pairs]
        same = sum((r is None) == (s is None) for r, s in pairs)
        later = sum(r is not None and s is not None and r > s for r, s in pairs)
        out(
            f"| {config} | {name} | {tool} | {_decided(real)} | {_decided(sim)} "
            f"| {same}/{len(pairs)} | {later}/{len(pairs)} |"
        )


def _decided(values: list[float | None]) -> str:
    times = [v for v in values if v is not None]
    median, _ = _quantiles([*times, *([math.inf] * (len(values) - len(times)))])
    return f"{len(times)}/{len(values)}, {median}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bad-runs", type=int, default=6, help="runs per bad scenario")
    parser.add_argument("--healthy-runs", type=int, default=12, help="runs per healthy kind")
    parser.add_argument("--jobs", type=int, default=8, help="runs at a time (default 8)")
    parser.add_argument("--rows", default="documented,tuned", help="documented and/or tuned")
    parser.add_argument("--output", default=str(Path(__file__).with_name("RESULTS.md")))
    args = parser.parse_args(argv)
    rows = {"documented": DOCUMENTED, "tuned": SHORTEST}
    started = time.monotonic()
    lines: list[str] = []

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="rollguard-peers-") as tmp:
        directory = Path(tmp)
        with running_kube_cluster(directory / "kube") as cluster, cluster.api_client() as api:
            for name in args.rows.split(","):
                row = rows[name]
                healthy = args.healthy_runs if row.cap is None else 0
                out(f"row {name}: time scale {row.scale:g}, {args.jobs} runs at a time")
                results += run_row(
                    row,
                    (args.bad_runs, healthy),
                    jobs=args.jobs,
                    cluster=cluster,
                    directory=directory,
                    api=api,
                )
    out()
    out("# Real peers: Argo Rollouts and Flagger next to rollguard")
    out()
    out(
        "Seconds are scenario seconds from the fault's onset (wall seconds x the row's time "
        "scale), read from the API server."
    )
    out()
    table(results, out)
    out()
    pooled_false_rollbacks(results, out)
    out()
    out("Each real peer next to bench/detection's simulation of it, given the same settings, ")
    out("on the same draws (bench/peers/simulated.py):")
    out()
    twins(results, out)
    out()
    out(f"Whole run: {time.monotonic() - started:.0f} s wall time.")
    Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = [
        {"case": {"scenario": c.scenario.name, "config": c.config.name, "scale": c.scale,
                  "seed": c.seed}, "outcomes": {t: asdict(o) for t, o in o_.items()}}
        for c, o_ in results
    ]  # fmt: skip
    Path(args.output).with_name("results.json").write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
