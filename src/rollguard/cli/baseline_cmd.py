"""``rollguard baseline create`` and ``rollguard baseline show``.

``create`` reads one load-test report (Artillery, k6, Locust) or the stable
version's live metrics through the policy's provider, and writes a
``performance-baseline.json``. An empty run is refused (exit 2), never
divided by zero.
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from rollguard.cli import help_format, out
from rollguard.cli.options import LegacyOutOption, OutputFormat, OutputOption, deprecated
from rollguard.errors import InputError, UsageError
from rollguard.wording import counted

if TYPE_CHECKING:
    from rollguard.baseline import Baseline

app = help_format.App(help="Make and inspect performance baselines.", no_args_is_help=True)


@app.command()
def create(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    report: Annotated[
        Path | None, typer.Argument(help="The load-test report.", show_default=False)
    ] = None,
    from_artillery: Annotated[
        bool, typer.Option("--from-artillery", help="artillery --output")
    ] = False,
    from_k6: Annotated[bool, typer.Option("--from-k6", help="k6 summary JSON")] = False,
    from_locust: Annotated[
        bool, typer.Option("--from-locust", help="locust --csv _stats.csv")
    ] = False,
    from_metrics: Annotated[
        bool,
        typer.Option("--from-metrics", help="The stable version's metrics (needs --policy)."),
    ] = False,
    policy_file: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            "-p",
            help="Take thresholds (and, with --from-metrics, the provider) from it.",
            show_default=False,
        ),
    ] = None,
    window: Annotated[str, typer.Option(help="--from-metrics window, e.g. 30m.")] = "30m",
    memory_mb: Annotated[
        float | None,
        typer.Option(
            help="The stable version's memory, if measured elsewhere.", show_default=False
        ),
    ] = None,
    output_file: Annotated[
        Path, typer.Option("--output-file", "-f", help="Where to write the baseline.")
    ] = Path("performance-baseline.json"),
    output: OutputOption = OutputFormat.TEXT,
    legacy_out: LegacyOutOption = None,
) -> None:
    """Write performance-baseline.json from a load test or from live metrics.

    Exit codes: 0 written · 2 not that tool's report, truncated, empty, or metrics unreadable.
    """
    from rollguard.baselines import artillery, k6, locust
    from rollguard.baselines.summary import (
        DEFAULT_THRESHOLDS,
        make_baseline,
        thresholds_from_policy,
        to_json,
    )
    from rollguard.policy import load_policy

    chosen = [
        name
        for name, flag in (
            ("artillery", from_artillery),
            ("k6", from_k6),
            ("locust", from_locust),
            ("metrics", from_metrics),
        )
        if flag
    ]
    if len(chosen) != 1:
        raise UsageError(
            "give exactly one of --from-artillery, --from-k6, --from-locust, --from-metrics"
        )
    if memory_mb is not None and not (math.isfinite(memory_mb) and memory_mb >= 0):
        raise UsageError(f"--memory-mb: expected megabytes, 0 or more; got {memory_mb:g}")
    policy = load_policy(policy_file) if policy_file is not None else None
    thresholds = thresholds_from_policy(policy) if policy is not None else DEFAULT_THRESHOLDS
    now = datetime.now(UTC)
    notes: tuple[str, ...] = ()
    if chosen[0] == "metrics":
        if policy is None or policy_file is None:
            raise UsageError("--from-metrics needs --policy (the provider comes from it)")
        baseline = _from_metrics(policy_file, window, thresholds, now)
    else:
        if report is None:
            raise UsageError(f"--from-{chosen[0]} needs the REPORT file")
        reader = {"artillery": artillery.read, "k6": k6.read, "locust": locust.read}[chosen[0]]
        try:
            summary = reader(report)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            # The readers name the usual mistakes; a value of the wrong type deeper down
            # (a number where Artillery writes an object) still gets one message, exit 2.
            raise InputError(
                f"{report}: not a valid {chosen[0]} report: a field has an unexpected type ({exc})"
            ) from None
        notes = summary.notes
        baseline = make_baseline(summary, timestamp=now, thresholds=thresholds, memory_mb=memory_mb)
    text = to_json(baseline)
    target = deprecated(legacy_out, output_file, old="--out", new="-f/--output-file")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if output is OutputFormat.JSON:
        sys.stdout.write(text.rstrip("\n") + "\n")
    _describe(out.console(stderr=output is OutputFormat.JSON), baseline, target, notes)


def _from_metrics(
    policy_file: Path, window: str, thresholds: dict[str, float], now: datetime
) -> Baseline:
    import asyncio

    from rollguard.baselines.from_metrics import baseline_from_measurements, queries
    from rollguard.metrics.factory import make_provider
    from rollguard.metrics.replay import ReplayProvider
    from rollguard.policy import load_policy
    from rollguard.policy.units import parse_duration

    try:
        window_seconds = parse_duration(window)
    except ValueError as exc:
        raise UsageError(f"--window: {exc}") from None
    policy = load_policy(policy_file)
    provider = make_provider(policy, base_dir=policy_file.parent)

    async def measure() -> Baseline:
        try:
            # A recording is measured at its end; live providers at the present moment.
            at = provider.end if isinstance(provider, ReplayProvider) else now.timestamp()
            await provider.collect(now=at)
            measured = await provider.measure(queries(window_seconds), now=at)
        finally:
            await provider.aclose()
        source = f"metrics:{policy.metrics.provider}:stable:{window}"
        return baseline_from_measurements(
            measured, source=source, timestamp=now, thresholds=thresholds
        )

    return asyncio.run(measure())


def _describe(console: Console, baseline: Baseline, target: Path, notes: tuple[str, ...]) -> None:
    metrics = baseline.metrics
    console.print(
        out.line(
            f"wrote {target}: error rate {metrics.error_rate_percent:g}% · "
            f"mean {metrics.avg_latency_ms:g} ms · p95 {metrics.p95_latency_ms:g} ms"
            + (f" · {metrics.requests} requests" if metrics.requests is not None else "")
        )
    )
    for note in notes:
        console.print(out.line(("note", out.DIM), f" {note}"))
    limit = baseline.thresholds.get("max_error_rate")
    if limit is not None and metrics.error_rate_percent > limit:
        console.print(
            out.line(
                ("warning", out.WARN),
                f" the run's error rate {metrics.error_rate_percent:g}% is above "
                f"max_error_rate {limit:g}%: is the version this baseline describes healthy?",
            )
        )


@app.command()
def show(
    file: Annotated[Path, typer.Argument(help="The baseline file.")],
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Validate a baseline file and print it, with its age.

    Exit codes: 0 valid · 2 missing or invalid (file, line and field named).
    """
    from rich.table import Table

    from rollguard.baseline import load_baseline

    baseline = load_baseline(file)
    stamp = baseline.timestamp
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
    age_seconds = (datetime.now(UTC) - stamp).total_seconds()
    if output is OutputFormat.JSON:
        body = baseline.model_dump(mode="json", exclude_none=True)
        body["age_seconds"] = round(age_seconds, 1)
        out.emit_json(body, indent=2)
        return
    table = Table(title=out.styled(f"{file} (made {_age(age_seconds)} ago)"), title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in baseline.metrics.model_dump(exclude_none=True).items():
        table.add_row(name, f"{value:g}" if isinstance(value, float) else str(value))
    for name, value in baseline.thresholds.items():
        table.add_row(out.styled(f"threshold: {name}"), f"{value:g}")
    console = out.console()
    console.print(table)
    if baseline.source:
        console.print(out.line(f"source: {baseline.source}"))


def _age(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return counted(round(max(seconds, 0)), "second")
