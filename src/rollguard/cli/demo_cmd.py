"""``rollguard demo``: the whole loop on this machine, a fault injected, the rollback live."""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rollguard.cli.options import OutputFormat, OutputOption

if TYPE_CHECKING:
    from rollguard.audit.base import AuditRecord, AuditSink

#: The default store of the reading commands, so `rollguard audit list` shows the demo.
DEMO_AUDIT_URL = "sqlite:///.rollguard/audit.db"


class Stack(StrEnum):
    """What carries and measures the demo's traffic."""

    EMBEDDED = "embedded"
    REAL = "real"


class ScenarioName(StrEnum):
    """The demo's scenarios (``rollguard.demo.scenarios.SCENARIOS``)."""

    ERROR_RATE = "error-rate"
    LATENCY = "latency"
    MEMORY = "memory"
    UNAUTHORIZED = "unauthorized"
    HEALTHY = "healthy"
    PROMOTE = "promote"


HELP = "\n\n".join(
    [
        "Run stable v1 and canary v2 of a demo service behind a local router (20% canary), "
        "send ~50 requests a second through it, break the canary, and watch rollguard "
        "detect the fault and roll it back. No other service is needed.",
        "Scenarios: error-rate (10% HTTP 500), latency (+1000 ms), memory (+120 MB), "
        "unauthorized (60 401/403 a minute), healthy (no fault, the canary left at 20%), "
        "promote (no fault: the canary promoted step by step, 20 -> 40 -> 70 -> 100%, as the "
        "evidence shows it no worse than stable; the timeline of steps is printed). In the "
        "fault scenarios the canary is being promoted the same way when the fault starts. The "
        "policy is the example policy's triggers with every window divided by --time-scale "
        "(printed at the start).",
        "Every decision and action goes to an audit trail (--audit-url, default "
        ".rollguard/audit.db in the current folder); the demo ends by printing the two "
        "commands that show it (rollguard audit list, rollguard report).",
        "Exit codes: 0 healthy or promoted · 1 rolled back · 2 the demo could not run · "
        "4 inconclusive · 5 the rollback failed · 6 the audit store cannot be written · "
        "130 interrupted (every server stopped).",
        "With --stack real the traffic goes through a real HAProxy (driven over its runtime "
        "API) and rollguard reads a real Prometheus, when both are installed; there the "
        "canary stays at 20% (no promotion) and --scenario promote is refused.",
        "Example: rollguard demo --scenario latency --output json",
    ]
)


def demo(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    scenario: Annotated[
        ScenarioName, typer.Option("--scenario", "-s", help="What goes wrong with the canary.")
    ] = ScenarioName.ERROR_RATE,
    output: OutputOption = OutputFormat.TEXT,
    time_scale: Annotated[
        float,
        typer.Option(min=1.0, help="Divide the example policy's windows by this (5 min -> 10 s)."),
    ] = 30.0,
    rate: Annotated[float, typer.Option(min=1.0, help="Requests a second users send.")] = 50.0,
    stack: Annotated[
        Stack,
        typer.Option(
            help="embedded: the built-in router and scraper; real: HAProxy and Prometheus "
            "(both must be installed)."
        ),
    ] = Stack.EMBEDDED,
    audit_url: Annotated[
        str,
        typer.Option(
            help="Where the demo writes its audit trail (sqlite:///PATH is relative to the "
            "current folder, or postgresql://...)."
        ),
    ] = DEMO_AUDIT_URL,
) -> None:
    """Run the demo and exit with the watch's outcome code."""
    import asyncio

    from rollguard.audit.factory import open_store
    from rollguard.cli.demo_show import DemoPrinter
    from rollguard.demo.run import DemoSettings, run_demo
    from rollguard.demo.scenarios import NO_PROMOTION_ON_REAL, SCENARIOS, on_stack
    from rollguard.errors import UsageError

    if scenario is ScenarioName.PROMOTE and stack is Stack.REAL:
        why = NO_PROMOTION_ON_REAL
        raise UsageError(f"--scenario promote runs on --stack embedded only: {why}")
    chosen = on_stack(SCENARIOS[scenario.value], stack.value)
    settings = DemoSettings(time_scale=time_scale, rate_per_second=rate, stack=stack.value)
    store = open_store(
        audit_url, base_dir=Path.cwd(), field="--audit-url"
    )  # exit 6 before any start
    printer = DemoPrinter(output, chosen, settings)
    try:
        store.check_key()
        printer.header(audit=store.location)
        try:
            result = asyncio.run(
                run_demo(chosen, settings=settings, on_event=printer.event, audit=_Trail(store))
            )
        except KeyboardInterrupt:
            printer.interrupted()
            raise typer.Exit(130) from None
    finally:
        store.close()
    printer.result(result)
    printer.audit_commands(_show_commands(audit_url))
    raise typer.Exit(int(result.watch.outcome.exit_code))


class _Trail:
    """Only appends: each demo is a fresh router and canary, so a demo never takes a
    deployment lock or finishes another demo's action, as a watch of a real target does."""

    def __init__(self, store: AuditSink) -> None:
        self._store = store

    def append(self, record: AuditRecord) -> int:
        return self._store.append(record)


def _show_commands(audit_url: str) -> list[str]:
    """The two commands that show what the demo recorded."""
    where = "" if audit_url == DEMO_AUDIT_URL else f" --db {shlex.quote(audit_url)}"
    return [f"rollguard audit list{where}", f"rollguard report{where}"]
