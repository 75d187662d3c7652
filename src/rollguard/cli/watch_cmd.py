"""``rollguard watch``: the post-deploy watch a CI pipeline runs."""

from __future__ import annotations

from typing import Annotated

import typer

from rollguard.cli.options import BaselineOption, OutputFormat, OutputOption, PolicyOption

HELP = "\n\n".join(
    [
        "Watch a deployment after it ships and roll it back when a trigger fires.",
        "Evaluates the policy every --interval for --for. People see a live table of "
        "every trigger; with --output json, machines get one JSON object per evaluation "
        "and a final object with outcome, action, trigger, reason, evidence, started_at "
        "and decided_at. A sequential trigger whose test the data cannot feed (a "
        "recording without histogram buckets, no baseline) is judged by its threshold "
        "rule: the first lines say so (JSON: objects of type fallback), and so does its "
        "evidence at every evaluation.",
        "A progressive release (promotion:) outlives the watch: one stopped by SIGINT or "
        "SIGTERM (Ctrl-C, a cancelled CI job) or killed leaves the canary at its share, "
        "and the next watch resumes the release at that step; --restart starts it over "
        "at its first step.",
        "Exit codes: 0 healthy for the whole duration · 1 rolled back · 2 invalid input · "
        "3 blocked · 4 inconclusive (no data) · 5 the action failed · 130/143 stopped by "
        "SIGINT/SIGTERM (deployment_end recorded as interrupted, with the signal and the "
        "release's step). A reader that closes stdout early (| head) does not stop the watch.",
        "Example: rollguard watch --policy rollguard.yaml --for 10m --interval 5s",
    ]
)


def watch(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    policy: PolicyOption,
    duration: Annotated[
        str, typer.Option("--for", help="How long to watch, e.g. 10m, 90s.")
    ] = "10m",
    interval: Annotated[
        str | None,
        typer.Option(
            help="Evaluation interval (default: the policy's analysis.interval).",
            show_default=False,
        ),
    ] = None,
    baseline: BaselineOption = None,
    output: OutputOption = OutputFormat.TEXT,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Start a progressive release over at its first step instead of resuming "
            "it at the step a stopped or killed watch left it (the canary steps back down).",
        ),
    ] = False,
) -> None:
    """Watch a deployment and roll it back when a trigger fires."""
    import asyncio

    from rollguard.cli.watch_run import run_watch
    from rollguard.errors import UsageError
    from rollguard.policy import load_policy
    from rollguard.policy.units import parse_duration

    try:
        duration_seconds = parse_duration(duration)
        interval_seconds = parse_duration(interval) if interval else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    loaded = load_policy(policy)
    code = asyncio.run(
        run_watch(
            loaded,
            base_dir=policy.resolve().parent,
            duration_seconds=duration_seconds,
            interval_seconds=interval_seconds,
            baseline_file=baseline,
            output=output,
            restart=restart,
        )
    )
    raise typer.Exit(code)
