"""``rollguard backtest``: would this policy have rolled back that recorded release?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rollguard.cli.options import BaselineOption, OutputFormat, OutputOption, PolicyOption

HELP = "\n\n".join(
    [
        "Replay a recorded series (the replay CSV, docs/replay-format.md) through a policy.",
        "The same engine as `watch` evaluates every analysis interval on a simulated "
        "clock, up to the first action; nothing is executed and nobody is notified. "
        "With --output json: evaluations, first_action (time as the CSV gives it, action, "
        "trigger, evidence) or null, every decision, and fallbacks: the sequential "
        "triggers the recording cannot feed (no le_ bucket columns, no baseline), which "
        "their threshold rule judges instead (the text output says so first). --plot "
        "writes a picture for people at exactly the path given, in the format its suffix "
        "names (.png, .svg, .pdf, ...; PNG without a suffix).",
        "Exit codes: 0 no action would have been taken · 1 an action would have been "
        "taken · 2 invalid input.",
        "Example: rollguard backtest --policy examples/sequential-policy.yaml "
        "--series tuesday.csv --plot tuesday.png",
    ]
)


def backtest(
    policy: PolicyOption,
    series: Annotated[Path, typer.Option("--series", "-s", help="The replay CSV.")],
    baseline: BaselineOption = None,
    output: OutputOption = OutputFormat.TEXT,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Write a picture of the backtest to this exact path; its suffix picks the "
            "format (.png, .svg, .pdf, ...; PNG without one).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Replay a recorded series through a policy and say what it would have done."""
    import asyncio

    from rollguard.cli import out, render
    from rollguard.controller.assemble import policy_baseline
    from rollguard.controller.backtest import run_backtest
    from rollguard.metrics.replay import ReplayProvider
    from rollguard.policy import load_policy

    loaded = load_policy(policy)
    if plot is not None:  # a bad suffix is an error before the work, not after it
        from rollguard.controller.backtest_plot import plot_format

        plot_format(plot)
    provider = ReplayProvider.from_file(series)
    base_dir = policy.resolve().parent
    reference = policy_baseline(loaded, base_dir=base_dir, override=baseline)
    result = asyncio.run(run_backtest(loaded, provider, baseline=reference, base_dir=base_dir))
    if plot is not None:
        from rollguard.controller.backtest_plot import plot_backtest

        plot_backtest(result, provider, plot)
    data = result.as_dict()
    if plot is not None and output is not OutputFormat.JSON:  # JSON keeps stdout one document
        out.say(f"wrote {plot}")
    if output is OutputFormat.JSON:
        out.emit_json(data)
    else:
        first = data["first_action"]
        for sentence in render.fallback_lines(result.fallbacks):
            out.say((sentence, out.WARN))
        out.say(f"{data['evaluations']} evaluations of {series} every {result.interval_seconds:g}s")
        previous = None
        for item in data["decisions"]:  # the timeline: only where the verdict changes
            if (item["verdict"], item["trigger"]) != previous:
                previous = (item["verdict"], item["trigger"])
                out.say(f"  {item['time']}: {item['verdict']} — {item['reason']}")
        if first is None:
            out.say("No action would have been taken.")
        else:
            out.say(
                f"At {first['time']}: {first['action']} by {first['trigger']} — {first['reason']}"
            )
    raise typer.Exit(0 if result.first_action is None else 1)
