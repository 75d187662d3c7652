"""Run a watch and show it: a live table for people, JSON lines for machines."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.text import Text

from rollguard.cli import render
from rollguard.cli.options import OutputFormat
from rollguard.controller.build import build_watcher
from rollguard.engine.evaluate import Evaluation
from rollguard.policy.model import Policy


async def run_watch(
    policy: Policy,
    *,
    base_dir: Path,
    duration_seconds: float,
    interval_seconds: float | None,
    baseline_file: Path | None,
    output: OutputFormat,
) -> int:
    """Watch until healthy or decided; return the outcome's exit code."""
    console = Console()
    deployment = policy.target.deployment
    live: Live | None = None

    def show(evaluation: Evaluation) -> None:
        if output is OutputFormat.JSON:
            sys.stdout.write(render.evaluation_json(evaluation, deployment=deployment) + "\n")
            sys.stdout.flush()
        elif live is not None:
            title = f"rollguard watching {deployment} — evaluation {evaluation.state.evaluations}"
            live.update(render.evaluation_table(evaluation, title=title))

    watcher = build_watcher(
        policy,
        base_dir=base_dir,
        baseline_file=baseline_file,
        interval_seconds=interval_seconds,
        on_evaluation=show,
    )
    try:
        if output is OutputFormat.TEXT:
            waiting = Text(f"rollguard watching {deployment} for {duration_seconds:g}s ...")
            with Live(waiting, console=console, refresh_per_second=4, transient=False) as live:
                result = await watcher.run(duration_seconds=duration_seconds)
        else:
            result = await watcher.run(duration_seconds=duration_seconds)
    finally:
        await watcher.provider.aclose()
        await watcher.executor.aclose()
    if output is OutputFormat.JSON:
        sys.stdout.write(render.result_json(result) + "\n")
    else:
        render.print_summary(console, result)
    return int(result.outcome.exit_code)
