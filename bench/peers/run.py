"""The real Argo Rollouts and Flagger next to rollguard: ``python -m bench.peers``.

Starts the real control plane (tools/kubernetes), both controllers
(tools/peers), a real Prometheus scraping the synthetic exporter, and runs
every row's scenarios, several runs at a time. Prints the table and writes it,
with every run's raw outcome, to ``bench/peers/RESULTS.md`` and
``bench/peers/results.json``. Each finished run is also appended to
``runs.jsonl`` next to them at once, so a run stopped early still leaves its
runs; ``--tabulate runs.jsonl`` prints and writes the tables from such a file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "src", ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402
from kubernetes import client as k8s  # noqa: E402

from bench.detection.core import wilson  # noqa: E402
from bench.peers import promotion_table  # noqa: E402
from bench.peers.gaps import Gaps, scrape_gaps  # noqa: E402
from bench.peers.harness import Case, Outcome, never, run_case  # noqa: E402
from bench.peers.manifests import (  # noqa: E402
    ARGO,
    DOCS,
    FLAGGER,
    ROLLGUARD,
    TOOLS,
    TUNED,
    scrape_milliseconds,
)
from bench.peers.simulated import simulate  # noqa: E402
from bench.peers.stepped_run import run_stepped_case  # noqa: E402
from bench.peers.stepping import STEPPED  # noqa: E402
from bench.peers.suite import (  # noqa: E402
    BAD,
    DOCUMENTED,
    HEALTHY,
    PROMOTION_ROW,
    SHORTEST,
    SMOKE,
    Row,
    cases,
    environment,
)
from servers.kube_cluster import KubeCluster, running_kube_cluster  # noqa: E402

Result = tuple[Case, dict[str, Outcome]]


def run_row(
    row: Row,
    runs: tuple[int, int],
    *,
    first_seed: int = 1,
    jobs: int,
    cluster: KubeCluster,
    directory: Path,
    api: k8s.ApiClient,
    save: Callable[[Result], None],
) -> tuple[list[Result], Gaps]:
    """Every case of ``row``, ``jobs`` at a time; and the scrapes Prometheus missed."""
    todo = cases(row, *runs, first_seed)
    runner = run_stepped_case if row.config.promotion else run_case
    with environment(cluster, directory, row.scale, api) as env:
        started = time.monotonic()

        def one(item: tuple[int, Case]) -> Result:
            index, case = item
            outcome = runner(env, case, index)
            print(f"  {row.config.name} | {case.name}: " + _brief(outcome), flush=True)
            save((case, outcome))
            return case, outcome

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, enumerate(todo)))
        interval = scrape_milliseconds(row.scale) / 1000
        gaps = scrape_gaps(env.prometheus_url, interval, time.monotonic() - started)
    return results, gaps


def _record(result: Result) -> dict[str, object]:
    case, outcomes = result
    return {
        "case": {"scenario": case.scenario.name, "config": case.config.name,
                 "scale": case.scale, "seed": case.seed, "cap": case.cap},
        "outcomes": {tool: asdict(outcome) for tool, outcome in outcomes.items()},
    }  # fmt: skip


def _loaded(record: dict[str, Any]) -> Result:
    """A saved run (``runs.jsonl``) as the case and outcomes it was."""
    scenarios = {item.name: item for item in [*BAD, *HEALTHY]}
    configs = {config.name: config for config in (DOCS, TUNED, SMOKE, STEPPED)}
    raw = record["case"]
    case = Case(
        scenarios[raw["scenario"]],
        configs[raw["config"]],
        raw["scale"],
        raw["seed"],
        raw.get("cap"),
    )
    return case, {tool: Outcome(**fields) for tool, fields in record["outcomes"].items()}


def _brief(outcome: dict[str, Outcome]) -> str:
    def say(o: Outcome) -> str:
        how = f" ({o.method})" if o.method else ""
        if o.evaluations:  # after the release (the first evaluation comes before it)
            fell = max(0, o.fallbacks - 1)
            how += f" [{fell}/{o.evaluations - 1} evaluations fell back]"
        if o.promoted_at is not None:
            how += f", all traffic on it at {o.promoted_at:.0f}s"
        if o.exposed is not None:
            how += f", {o.exposed:,.0f} canary requests served"
        if o.decided is not None:
            return (
                f"{o.tool} decided {o.decided:.0f}s{how}, traffic on stable {_s(o.drained)}, "
                f"stable {_s(o.recovered)}"
            )
        return f"{o.tool} {'promoted' if o.promoted else 'no decision'}{how} {o.note}".strip()

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
        "| traffic on stable median / p90 | release back on stable median / p90 "
        "| false rollbacks (95% interval) |"
    )
    out("|---|---|---|---:|---:|---|---|---|---|")
    groups: dict[tuple[str, str, str], list[tuple[Case, Outcome]]] = {}
    for case, outcomes in results:
        for tool in TOOLS:
            key = (case.config.name, case.scenario.name, tool)
            groups.setdefault(key, []).append((case, outcomes[tool]))
    for (config, name, tool), items in groups.items():
        bad = items[0][0].scenario.fault is not None
        early = [o for c, o in items if o.decided is not None and o.decided < 0]
        watched = [o for c, o in items if not (o.decided is not None and o.decided < 0)]
        false = len(early) if bad else len([o for _, o in items if o.decided is not None])
        low, high = wilson(false, len(items))
        fr = f"{false}/{len(items)} ({low:.0%}-{high:.0%})"
        if bad:
            decided = [o for o in watched if o.decided is not None]
            rate = f"{len(decided)}/{len(watched)}" if watched else "—"
            undecided = [math.inf] * (len(watched) - len(decided))
            times = [
                " / ".join(_quantiles([never(getattr(o, what)) for o in decided] + undecided))
                for what in ("decided", "drained", "recovered")
            ]
            fr = fr if name.endswith("in") else "—"
        else:
            rate, times = "—", ["— / —"] * 3
        out(f"| {config} | {name} | {tool} | {len(items)} | {rate} | {' | '.join(times)} | {fr} |")


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


def judged(results: list[Result], out: Callable[[str], None]) -> None:
    """How rollguard judged: evaluations fallen back to a threshold rule, deciding methods."""
    outcomes = [o[ROLLGUARD] for _, o in results if o[ROLLGUARD].evaluations]
    if not outcomes:
        return
    # Each run's first evaluation comes before the release: the canary has served nothing,
    # so it always falls back; it is left out.
    total = sum(o.evaluations - 1 for o in outcomes)
    fell = sum(max(0, o.fallbacks - 1) for o in outcomes)
    methods: dict[str, int] = {}
    for o in outcomes:
        if o.method:
            methods[o.method] = methods.get(o.method, 0) + 1
    said = ", ".join(f"{n} by {m}" for m, n in sorted(methods.items())) or "none"
    out(
        f"- rollguard: {fell} of {total} evaluations after the release had a sequential "
        f"trigger judged by its threshold rule (no count in its window); rollbacks "
        f"decided: {said}"
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bad-runs", type=int, default=6, help="runs per bad scenario")
    parser.add_argument("--healthy-runs", type=int, default=12, help="runs per healthy kind")
    parser.add_argument("--jobs", type=int, default=8, help="runs at a time (default 8)")
    parser.add_argument(
        "--rows",
        default="documented,tuned",
        help="documented, tuned and/or promotion (each tool steps its canary: "
        "time to 100%% healthy, canary requests served bad; bench/peers/stepping.py)",
    )
    parser.add_argument(
        "--cap",
        type=float,
        default=None,
        help="watch every run at most this many scenario seconds after the onset "
        "(healthy runs too; default: the row's own, the whole canaries for documented)",
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=1,
        help="the first run's seed (more runs later: a new output, then --tabulate both)",
    )
    parser.add_argument(
        "--tabulate",
        type=Path,
        nargs="+",
        default=None,
        help="no runs: the tables from one or more runs.jsonl",
    )
    parser.add_argument("--output", default=str(Path(__file__).with_name("RESULTS.md")))
    return parser


def _measure(
    args: argparse.Namespace, saved: Path, out: Callable[[str], None]
) -> tuple[list[Result], list[str]]:
    """Every row asked for; each run appended to ``saved`` as it ends; each row's gaps."""
    rows = {"documented": DOCUMENTED, "tuned": SHORTEST, "promotion": PROMOTION_ROW}
    saved.write_text("", encoding="utf-8")
    lock = threading.Lock()

    def save(result: Result) -> None:
        with lock, saved.open("a", encoding="utf-8") as file:
            file.write(json.dumps(_record(result)) + "\n")

    results: list[Result] = []
    gaps: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rollguard-peers-") as tmp:
        directory = Path(tmp)
        with running_kube_cluster(directory / "kube") as cluster, cluster.api_client() as api:
            for name in args.rows.split(","):
                row = rows[name]
                if args.cap is not None:
                    row = replace(row, cap=args.cap)
                healthy = args.healthy_runs if row.cap is None or args.cap else 0
                out(f"row {name}: time scale {row.scale:g}, {args.jobs} runs at a time")
                found, missed = run_row(
                    row,
                    (args.bad_runs, healthy),
                    jobs=args.jobs,
                    cluster=cluster,
                    directory=directory,
                    api=api,
                    save=save,
                    first_seed=args.first_seed,
                )
                results += found
                interval = scrape_milliseconds(row.scale) / 1000
                gaps.append(f"- {name}: {missed.sentence(interval, row.scale)}")
                out(gaps[-1])
    return results, gaps


def _report(results: list[Result], gaps: list[str], out: Callable[[str], None]) -> None:
    out()
    out("# Real peers: Argo Rollouts and Flagger next to rollguard")
    out()
    out(
        "Seconds are scenario seconds from the fault's onset (wall seconds x the row's time "
        "scale), read from the API server."
    )
    caps = sorted({(c.config.name, c.cap) for c, _ in results if c.cap is not None})
    for config, cap in caps:
        out(f"Row {config}: every run watched at most {cap:g} s after the onset.")
    stepped = [r for r in results if r[0].config.promotion]
    results = [r for r in results if not r[0].config.promotion]
    if stepped:
        out()
        out("Promotion row: each tool steps its own canary (bench/peers/stepping.py).")
        out()
        promotion_table.table(stepped, out)
    if results:
        out()
        table(results, out)
        out()
        pooled_false_rollbacks(results, out)
    judged([*results, *stepped], out)
    if gaps:
        out()
        out("Scrapes of the exporter by the real Prometheus, per row (bench/peers/gaps.py):")
        out()
        for line in gaps:
            out(line)
    if results:
        out()
        out("Each real peer next to bench/detection's simulation of it, given the same ")
        out("settings, on the same draws (bench/peers/simulated.py):")
        out()
        twins(results, out)
    out()
    out("Per run:")
    out()
    out("```")
    for case, outcome in [*results, *stepped]:
        out(f"  {case.config.name} | {case.name}: " + _brief(outcome))
    out("```")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    lines: list[str] = []
    output = Path(args.output)

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    if args.tabulate is not None:
        lines_read = [
            line
            for path in args.tabulate
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        results = [_loaded(json.loads(line)) for line in lines_read]
        gaps: list[str] = []
    else:
        results, gaps = _measure(args, output.with_name("runs.jsonl"), out)
    _report(results, gaps, out)
    out()
    out(f"Whole run: {time.monotonic() - started:.0f} s wall time.")
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = [_record(result) for result in results]
    output.with_name("results.json").write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
