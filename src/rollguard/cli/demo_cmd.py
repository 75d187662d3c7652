"""``rollguard demo``: the whole loop on this machine, a fault injected, the rollback live."""

from __future__ import annotations

from enum import StrEnum

import typer

from rollguard.cli.options import OutputFormat


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


HELP = "\n\n".join(
    [
        "Run stable v1 and canary v2 of a demo service behind a local router (20% canary), "
        "send ~50 requests a second through it, break the canary, and watch rollguard "
        "detect the fault and roll it back. No other service is needed.",
        "Scenarios: error-rate (10% HTTP 500), latency (+1000 ms), memory (+120 MB), "
        "unauthorized (60 401/403 a minute), healthy (no fault). The policy is the seed's "
        "triggers with every window divided by --time-scale (printed at the start).",
        "Exit codes: 0 healthy · 1 rolled back · 2 the demo could not run · "
        "4 inconclusive · 5 the rollback failed · 130 interrupted (every server stopped).",
        "With --stack real the traffic goes through a real HAProxy (driven over its runtime "
        "API) and rollguard reads a real Prometheus, when both are installed.",
        "Example: rollguard demo --scenario latency --output json",
    ]
)


def demo(
    scenario: ScenarioName = typer.Option(  # noqa: B008
        ScenarioName.ERROR_RATE, "--scenario", "-s", help="What goes wrong with the canary."
    ),
    output: OutputFormat = typer.Option(OutputFormat.TEXT, "--output", "-o", help="text or json."),  # noqa: B008
    time_scale: float = typer.Option(
        30.0, "--time-scale", min=1.0, help="Divide the seed's windows by this (5 min -> 10 s)."
    ),
    rate: float = typer.Option(50.0, "--rate", min=1.0, help="Requests a second users send."),
    stack: Stack = typer.Option(  # noqa: B008
        Stack.EMBEDDED,
        "--stack",
        help="embedded: the built-in router and scraper; real: HAProxy and Prometheus "
        "(both must be installed).",
    ),
) -> None:
    """Run the demo and exit with the watch's outcome code."""
    import asyncio

    from rollguard.cli.demo_show import DemoPrinter
    from rollguard.demo.run import DemoSettings, run_demo
    from rollguard.demo.scenarios import SCENARIOS

    chosen = SCENARIOS[scenario.value]
    settings = DemoSettings(time_scale=time_scale, rate_per_second=rate, stack=stack.value)
    printer = DemoPrinter(output, chosen, settings)
    printer.header()
    try:
        result = asyncio.run(run_demo(chosen, settings=settings, on_event=printer.event))
    except KeyboardInterrupt:
        printer.interrupted()
        raise typer.Exit(130) from None
    printer.result(result)
    raise typer.Exit(int(result.watch.outcome.exit_code))
