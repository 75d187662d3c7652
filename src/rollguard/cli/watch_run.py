"""Run a watch and show it: a live table for people, JSON lines for machines."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.live import Live

from rollguard.cli import out, pipe, render
from rollguard.cli.github import GitHubActions
from rollguard.cli.options import OutputFormat
from rollguard.controller.assemble import Overrides, assemble
from rollguard.controller.cadence import thin_windows
from rollguard.controller.watch import Outcome, Watcher, WatchResult
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
    restart: bool = False,
) -> int:
    """Watch until healthy or decided; return the outcome's exit code.

    SIGINT or SIGTERM stops the watch, not a progressive release: it stays at its
    step for the next watch, unless ``restart`` starts it over at its first step.
    """
    console = out.console()
    deployment = policy.target.deployment
    live: Live | None = None

    lines = pipe.LineWriter(sys.stdout)  # a reader that goes away never stops the watch

    def show(evaluation: Evaluation) -> None:
        progress = watcher.progress
        promotion = None
        if progress is not None and progress.last is not None:
            promotion = {
                "canary_weight": progress.weight,
                "step": progress.index + 1,
                "accepted": progress.last.accepted,
                "reason": progress.last.reason,
                "evidence": list(progress.last.evidence),
            }
        if output is OutputFormat.JSON:
            lines.write(
                render.evaluation_json(evaluation, deployment=deployment, promotion=promotion)
            )
        elif live is not None:
            title = f"rollguard watching {deployment} — evaluation {evaluation.state.evaluations}"
            if promotion is not None:
                title += f" — canary at {promotion['canary_weight']}%: {promotion['reason']}"
            live.update(render.evaluation_table(evaluation, title=title))

    watcher = assemble(
        policy,
        Overrides(
            base_dir=base_dir,
            baseline_file=baseline_file,
            interval_seconds=interval_seconds,
            on_evaluation=show,
        ),
    )
    try:
        await _say_first(watcher, output, lines.write, console)
        with pipe.cancelled_by_signals(watcher.stop_by) as signals:
            run = watcher.run(duration_seconds=duration_seconds, restart=restart)
            if output is OutputFormat.TEXT:
                waiting = out.styled(
                    f"rollguard watching {deployment} for {duration_seconds:g}s ..."
                )
                with Live(waiting, console=console, refresh_per_second=4, transient=False) as live:
                    result = await signals.run(run)
            else:
                result = await signals.run(run)
    except pipe.Interrupted as stopped:
        if output is OutputFormat.JSON:
            lines.write(
                render.interrupted_json(
                    stopped.signal_name, deployment=deployment, note=watcher.stop_note
                )
            )
        else:
            render.print_interrupted(
                out.console(stderr=True), stopped.signal_name, watcher.stop_note
            )
        return stopped.exit_code
    finally:
        await watcher.provider.aclose()
        await watcher.executor.aclose()
    if output is OutputFormat.JSON:
        lines.write(render.result_json(result))
    else:
        render.print_summary(console, result)
    _tell_github(result, deployment=deployment)
    return int(result.outcome.exit_code)


async def _say_first(
    watcher: Watcher, output: OutputFormat, write: Callable[[str], object], console: Console
) -> None:
    """Said once, before the first evaluation: which sequential triggers their threshold
    rule judges instead, then which have windows too short for their test."""
    thin = await thin_windows(watcher.policy, watcher.provider)
    warnings = {name: why for name, why in thin.items() if name not in watcher.fallbacks}
    if output is OutputFormat.JSON:
        for line in [*render.fallback_json(watcher.fallbacks), *render.warning_json(warnings)]:
            write(line)
        return
    sentences = [*render.fallback_lines(watcher.fallbacks), *render.warning_lines(warnings)]
    for sentence in sentences:
        console.print(out.styled(sentence, out.WARN))


def _tell_github(result: WatchResult, *, deployment: str) -> None:
    """Under GitHub Actions: a job summary, and an annotation unless healthy."""
    github = GitHubActions.from_env(stream=sys.stderr)
    if not github.enabled:
        return
    github.summary(render.summary_markdown(result, deployment=deployment))
    message = f"{deployment}: {result.outcome.value} ({result.action.value}): {result.reason}"
    if result.outcome is Outcome.INCONCLUSIVE:
        github.warning(message, title="rollguard watch")
    elif result.outcome is not Outcome.HEALTHY:
        github.error(message, title="rollguard watch")
