"""How ``rollguard demo`` looks: a running commentary for people, JSON lines for machines."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.text import Text

from rollguard.cli import out, render
from rollguard.cli.options import OutputFormat
from rollguard.controller import Outcome
from rollguard.demo.report import DemoResult, iso
from rollguard.demo.run import DemoEvent, DemoSettings
from rollguard.demo.scenarios import Scenario, scaling_lines
from rollguard.engine.decision import TriggerStatus
from rollguard.engine.evaluate import Evaluation

UNITS = {
    "error_rate_percent": "%",
    "latency_p95_ms": "ms",
    "memory_mb": "MB",
    "unauthorized_per_minute": "/min",
}
SHORT_NAMES = {
    "error_rate_trigger": "error rate",
    "latency_trigger": "p95 latency",
    "memory_trigger": "memory",
    "runtime_security.unauthorized_access_attempts": "unauthorized",
    "runtime_security.suspicious_patterns": "suspicious",
}
STATUS_STYLE = {TriggerStatus.OK: "green", TriggerStatus.FIRING: "bold red"}
EVENT_STYLE = {
    "fault": "bold yellow",
    "decided": "bold red",
    "action": "cyan",
    "warm": "green",
    "step": "bold cyan",
}


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}%"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


class DemoPrinter:
    """Receives the demo's events and prints them in the chosen format."""

    def __init__(self, output: OutputFormat, scenario: Scenario, settings: DemoSettings) -> None:
        self.output = output
        self.scenario = scenario
        self.settings = settings
        self.console = out.console()
        self.began: float | None = None

    def _json(self, payload: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(payload, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def header(self, *, audit: str) -> None:
        lines = scaling_lines(self.settings.time_scale, progressive=self.scenario.progressive)
        if self.output is OutputFormat.JSON:
            self._json(
                {
                    "type": "start",
                    "scenario": self.scenario.name,
                    "fault": self.scenario.fault,
                    "time_scale": self.settings.time_scale,
                    "scaling": lines,
                    "audit_store": audit,
                }
            )
            return
        self.console.print(
            out.line(
                ("rollguard demo", out.BOLD),
                " — scenario ",
                (self.scenario.name, out.BOLD),
                f": {self.scenario.description}",
            )
        )
        self.console.print(
            out.line(
                f"The example policy's durations, divided by {self.settings.time_scale:g} so "
                "the demo ends within about a minute:"
            )
        )
        for line in lines:
            self.console.print(out.line(f"  {line}"))
        self.console.print(out.line("Audit trail: ", (audit, out.BOLD)))

    def event(self, event: DemoEvent) -> None:
        if self.began is None:
            self.began = event.at
        if self.output is OutputFormat.JSON:
            if event.evaluation is not None:
                line = render.evaluation_json(event.evaluation, deployment="demo-service")
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            else:
                self._json(
                    {"type": "event", "kind": event.kind, "at": iso(event.at),
                     "message": event.message, **event.data}
                )  # fmt: skip
            return
        offset = (f"+{event.at - self.began:5.1f}s", out.DIM)
        if event.evaluation is not None:
            self.console.print(out.line(offset, "  ") + self._evaluation_line(event.evaluation))
            return
        style = EVENT_STYLE.get(event.kind, "")
        self.console.print(out.line(offset, "  ", (event.message, style)))

    def _evaluation_line(self, evaluation: Evaluation) -> Text:
        parts: list[object] = []
        for result in evaluation.results:
            evidence = result.evidence
            unit = UNITS.get(evidence.signal, "")
            name = SHORT_NAMES.get(result.trigger, result.trigger)
            style = STATUS_STYLE.get(result.status, "yellow")
            if parts:
                parts.append(" · ")
            parts.append(
                f"{name} {_number(evidence.value)}{unit} (limit {_number(evidence.limit)}) "
            )
            parts.append((result.status.value, style))
        return out.line(*parts)

    def interrupted(self) -> None:
        message = "interrupted: every demo server was stopped"
        if self.output is OutputFormat.JSON:
            self._json({"type": "interrupted", "message": message})
        else:
            self.console.print(out.line("\n", (message, "bold yellow")))

    def result(self, result: DemoResult) -> None:
        if self.output is OutputFormat.JSON:
            self._json(result.as_dict())
            return
        watch, users, show = result.watch, result.users, self.console
        style = render.OUTCOME_STYLE[watch.outcome]
        show.print(
            out.line(
                "\n",
                (watch.outcome.value.upper(), style),
                f" (exit {int(watch.outcome.exit_code)})  action: {watch.action.value}",
            )
        )
        rows: list[tuple[str, str]] = []
        if result.fault_at is not None:
            rows.append(("fault injected", f"{iso(result.fault_at)}  {self.scenario.description}"))
        if watch.outcome is Outcome.PROMOTED and result.detected_at is not None:
            rows.append(("promoted", f"{iso(result.detected_at)}  {watch.reason}"))
        elif result.detected_at is not None:
            after = f" (+{result.detect_seconds:.1f}s after the fault)" if result.fault_at else ""
            rows.append(("detected", f"{iso(result.detected_at)}{after} by {watch.trigger}"))
            rows.append(("evidence", watch.reason))
        if result.recovered_at is not None:
            after = f" (+{result.recover_seconds:.1f}s after the fault)" if result.fault_at else ""
            rows.append(("all traffic on stable", f"{iso(result.recovered_at)}{after}"))
        rows.append(("router now", f"canary {result.canary_weight}% ({result.canary_state})"))
        rows.append(
            (
                "users' error rate",
                f"before {_percent(users.error_rate_before)} · during "
                f"{_percent(users.error_rate_during)} · after {_percent(users.error_rate_after)}"
                f"  (stable alone: {_percent(users.stable_error_rate)})",
            )
        )
        rows.append(
            (
                "users' p95 latency",
                f"before {_ms(users.p95_ms_before)} · during {_ms(users.p95_ms_during)} · "
                f"after {_ms(users.p95_ms_after)}",
            )
        )
        rows.append(("requests sent", f"{users.requests}"))
        first = result.promotion_steps[0]["at"] if result.promotion_steps else 0.0
        for step in result.promotion_steps:
            evidence = ", ".join(
                f"{item['test']} e={item['e_value']:.3g} (need {item['threshold']:.3g})"
                for item in step["evidence"]
            )
            rows.append(
                (
                    f"step {step['step']}/{step['of']}",
                    f"+{step['at'] - first:5.1f}s  canary {step['canary_weight']}%"
                    + (f"  {evidence}" if evidence else "  (first step: no evidence yet)"),
                )
            )
        if result.promoted_seconds is not None:
            rows.append(("time to 100%", f"{result.promoted_seconds:.1f}s from the first step"))
        if result.fault_at is None:
            rows.append(("verdict", watch.reason))
        width = max(len(label) for label, _ in rows)
        for label, text in rows:
            show.print(out.line(f"  {label:<{width}}  {text}"), soft_wrap=True)

    def audit_commands(self, commands: list[str]) -> None:
        """The last words: how to see what the demo recorded."""
        if self.output is OutputFormat.JSON:
            self._json({"type": "audit", "show": commands})
            return
        self.console.print(out.line("\nWhat the demo recorded:"))
        for command in commands:
            self.console.print(out.line("  ", (command, out.BOLD)))
