"""Run a watch and show it: a live table for people, JSON lines for machines."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.live import Live

from rollguard.cli import out, pipe, render
from rollguard.cli.github import GitHubActions
from rollguard.cli.options import OutputFormat
from rollguard.controller.assemble import Overrides, assemble
from rollguard.controller.watch import Outcome, WatchResult
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
    # said once, first: which sequential triggers their threshold rule judges instead
    if output is OutputFormat.JSON:
        for line in render.fallback_json(watcher.fallbacks):
            lines.write(line)
    else:
        for sentence in render.fallback_lines(watcher.fallbacks):
            console.print(out.styled(sentence, out.WARN))
    try:
        with pipe.cancelled_by_signals() as signals:
            if output is OutputFormat.TEXT:
                waiting = out.styled(
                    f"rollguard watching {deployment} for {duration_seconds:g}s ..."
                )
                with Live(waiting, console=console, refresh_per_second=4, transient=False) as live:
                    result = await signals.run(watcher.run(duration_seconds=duration_seconds))
            else:
                result = await signals.run(watcher.run(duration_seconds=duration_seconds))
    except pipe.Interrupted as stopped:
        if output is OutputFormat.JSON:
            lines.write(render.interrupted_json(stopped.signal_name, deployment=deployment))
        else:
            render.print_interrupted(out.console(stderr=True), stopped.signal_name)
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
