"""How evaluations and results look: rich tables for people, JSON lines for machines."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from rollguard.cli import out
from rollguard.controller.stopped import StopNote
from rollguard.controller.watch import Outcome, WatchResult
from rollguard.engine.decision import TriggerStatus
from rollguard.engine.evaluate import Evaluation
from rollguard.timestamps import rfc3339

STATUS_STYLE = {
    TriggerStatus.OK: "green",
    TriggerStatus.BREACHING: "yellow",
    TriggerStatus.FIRING: "bold red",
    TriggerStatus.DRY_RUN: "magenta",
    TriggerStatus.WAITING: "dim",
    TriggerStatus.NO_DATA: "yellow",
    TriggerStatus.INCONCLUSIVE: "bold yellow",
}

OUTCOME_STYLE = {
    Outcome.HEALTHY: "bold green",
    Outcome.ROLLED_BACK: "bold red",
    Outcome.BLOCKED: "bold red",
    Outcome.INCONCLUSIVE: "bold yellow",
    Outcome.FAILED: "bold red",
    Outcome.PROMOTED: "bold green",
}


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.4g}"


def evaluation_table(evaluation: Evaluation, *, title: str) -> Table:
    """One row per trigger: signal, value, limit, window, status, why."""
    table = Table(title=out.styled(title), title_justify="left", expand=False)
    for column in ("trigger", "signal", "canary", "limit", "window", "status", "detail"):
        table.add_column(column, overflow="fold")
    for result in evaluation.results:
        evidence = result.evidence
        table.add_row(
            out.styled(result.trigger),
            out.styled(evidence.signal),
            _number(evidence.value),
            _number(evidence.limit),
            f"{evidence.window_seconds:g}s",
            out.styled(result.status.value, STATUS_STYLE[result.status]),
            out.styled(evidence.reason),
        )
    return table


def evaluation_json(
    evaluation: Evaluation, *, deployment: str, promotion: dict[str, Any] | None = None
) -> str:
    """One JSON object per evaluation; ``promotion`` is a progressive release's evidence."""
    payload: dict[str, Any] = {
        "type": "evaluation",
        "deployment": deployment,
        "at": _iso(evaluation.at),
        "decision": evaluation.decision.as_dict(),
        "triggers": [result.as_dict() for result in evaluation.results],
    }
    if promotion is not None:
        payload["promotion"] = promotion
    return json.dumps(payload, separators=(",", ":"))


def fallback_lines(fallbacks: dict[str, str]) -> list[str]:
    """One sentence per sequential trigger that its threshold rule judges instead."""
    return [
        f"{name}: judged by its threshold rule, the sequential test cannot be fed ({why})"
        for name, why in fallbacks.items()
    ]


def fallback_json(fallbacks: dict[str, str]) -> list[str]:
    """The same, as JSON lines of ``type`` fallback (before the first evaluation)."""
    return [
        json.dumps({"type": "fallback", "trigger": name, "reason": why}, separators=(",", ":"))
        for name, why in fallbacks.items()
    ]


def warning_lines(warnings: dict[str, str]) -> list[str]:
    """One sentence per trigger a warning is about (e.g. a window too short to feed it)."""
    return [f"{name}: {why}" for name, why in warnings.items()]


def warning_json(warnings: dict[str, str]) -> list[str]:
    """The same, as JSON lines of ``type`` warning (before the first evaluation)."""
    return [
        json.dumps({"type": "warning", "trigger": name, "reason": why}, separators=(",", ":"))
        for name, why in warnings.items()
    ]


def result_json(result: WatchResult) -> str:
    """The final JSON object of a watch."""
    return json.dumps({"type": "result", **result.as_dict()}, separators=(",", ":"))


def interrupted_json(signal_name: str, *, deployment: str, note: StopNote | None = None) -> str:
    """The last JSON object of a watch stopped by a signal: what it left, and where a
    progressive release stays (``release``: step, of, canary_weight; null before a step)."""
    body: dict[str, Any] = {"type": "interrupted", "deployment": deployment, "signal": signal_name}
    if note is not None:
        body.update(note.as_dict())
    return json.dumps(body, separators=(",", ":"))


def print_interrupted(console: Console, signal_name: str, note: StopNote | None = None) -> None:
    """What people see when a watch is stopped by a signal."""
    said = note.sentence() if note is not None else "nothing was decided"
    console.print(out.line("\n", ("INTERRUPTED", "bold yellow"), f" by {signal_name}: {said}"))


def print_summary(console: Console, result: WatchResult) -> None:
    """The final words for people: outcome, trigger, reason, timing."""
    style = OUTCOME_STYLE[result.outcome]
    console.print(
        out.line("\n", (result.outcome.value.upper(), style), f"  action: {result.action.value}")
    )
    if result.trigger:
        console.print(out.line(f"trigger: {result.trigger}"))
    console.print(out.line(f"reason:  {result.reason}"))
    decided = f", decided at {_iso(result.decided_at)}" if result.decided_at else ""
    console.print(
        out.line(f"{result.evaluations} evaluations, started {_iso(result.started_at)}{decided}")
    )
    if result.action_outcome:
        for step in result.action_outcome.get("steps", []):
            mark = "✓" if step.get("ok") else "✗"
            console.print(out.line(f"  {mark} {step.get('step')}: {step.get('detail', '')}"))


def summary_markdown(result: WatchResult, *, deployment: str) -> str:
    """The GitHub job summary of a watch: outcome first, then every trigger's evidence."""
    from rollguard.cli.github import markdown_cell

    lines = [
        f"## rollguard watch `{deployment}`: {result.outcome.value.replace('_', ' ')}",
        "",
        f"**Action:** `{result.action.value}`"
        + (f" · **trigger:** `{result.trigger}`" if result.trigger else ""),
        "",
        f"**Reason:** {markdown_cell(result.reason)}",
        "",
        "| trigger | signal | canary | limit | window |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for item in result.evidence:
        lines.append(
            f"| {markdown_cell(str(item['trigger']))} | {item['signal']} | "
            f"{_number(item['value'])} | {_number(item['limit'])} | {item['window_seconds']:g}s |"
        )
    return "\n".join(lines)


def _iso(at: float) -> str:
    return rfc3339(at, "seconds")
