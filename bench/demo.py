"""How fast the live demo detects and undoes each fault, and the HTTP clients' cost.

    python bench/demo.py [--runs 2] [--time-scale 30]

Runs every ``rollguard demo`` scenario ``--runs`` times in this process (real
servers, real traffic) and prints, per scenario, the median seconds from the
fault to the decision and to all traffic on stable, and the users' error rate
during and after. Then measures the CPU one request costs with httpx and with
``rollguard.demo.http1`` against a real demo service (why the demo uses the
latter). Figures depend on the machine's load; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402

from rollguard.demo import service  # noqa: E402
from rollguard.demo.http1 import Http1Pool  # noqa: E402
from rollguard.demo.run import DemoSettings, run_demo  # noqa: E402
from rollguard.demo.scenarios import SCENARIOS  # noqa: E402


def _median(values: list[float | None]) -> str:
    known = [value for value in values if value is not None]
    return f"{statistics.median(known):.2f}" if known else "—"


async def scenarios(runs: int, time_scale: float) -> None:
    print(f"demo scenarios, time scale {time_scale:g}, {runs} run(s) each (medians)")
    print(f"{'scenario':<14}{'outcome':<14}{'trigger':<48}{'detect s':>9}{'recover s':>10}"
          f"{'users err% during':>19}{'after':>7}")  # fmt: skip
    settings = DemoSettings(time_scale=time_scale)
    for name, scenario in SCENARIOS.items():
        results = [await run_demo(scenario, settings=settings) for _ in range(runs)]
        outcomes = {result.watch.outcome.value for result in results}
        triggers = {str(result.watch.trigger) for result in results}
        print(
            f"{name:<14}{'/'.join(sorted(outcomes)):<14}{'/'.join(sorted(triggers)):<48}"
            f"{_median([r.detect_seconds for r in results]):>9}"
            f"{_median([r.recover_seconds for r in results]):>10}"
            f"{_median([r.users.error_rate_during for r in results]):>19}"
            f"{_median([r.users.error_rate_after for r in results]):>7}"
        )


async def _cpu_per_request(url: str, send: Callable[[], Awaitable[object]], n: int) -> float:
    for _ in range(20):  # warm the connection pool
        await send()
    started = time.process_time()
    await asyncio.gather(*(send() for _ in range(n)))
    return (time.process_time() - started) / n * 1000


async def clients(n: int = 500) -> None:
    child = service.start("v1", role="stable")
    url = f"{child.url}/api/bench"
    try:
        async with httpx.AsyncClient() as client:
            with_httpx = await _cpu_per_request(url, lambda: client.get(url), n)
        pool = Http1Pool()
        try:
            with_http1 = await _cpu_per_request(url, lambda: pool.request("GET", url), n)
        finally:
            await pool.aclose()
    finally:
        child.stop()
    print(f"\nclient CPU per request over {n} requests to a real demo service")
    print(f"  httpx.AsyncClient  {with_httpx:6.2f} ms")
    print(f"  demo.http1         {with_http1:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--time-scale", type=float, default=30.0)
    parser.add_argument("--skip-scenarios", action="store_true")
    options = parser.parse_args()
    if not options.skip_scenarios:
        asyncio.run(scenarios(options.runs, options.time_scale))
    asyncio.run(clients())


if __name__ == "__main__":
    main()
