"""When one of a signal's two queries fails, the other is stopped before the measurement returns.

A ratio runs its errors and requests queries at once. The command provider's
queries are real programs here: the requests program fails as soon as the
errors program has started, and the errors program would otherwise run on
for 30 s, past the measurement that asked for it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from rollguard.metrics.factory import make_provider
from rollguard.policy.model import Policy
from rollguard.signals import Phase, Query, Signal, Version
from support import process_running, wait_until

#: Records its pid (written whole, then renamed into place), then hangs; if it is not
#: stopped, it leaves a ".done" file behind when it ends.
HANGS = """import os, sys, time
with open(sys.argv[1] + ".part", "w") as out:
    out.write(str(os.getpid()))
os.rename(sys.argv[1] + ".part", sys.argv[1])
time.sleep(30)
open(sys.argv[1] + ".done", "w").close()
"""
#: Fails once the hanging program has started.
FAILS = """import os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
sys.exit("requests: backend refused")
"""


async def test_a_failed_query_stops_its_sibling_before_the_measurement_returns(
    tmp_path: Path,
) -> None:
    pid_file = str(tmp_path / "errors.pid")
    source = {
        "provider": "command",
        "timeout": 60,
        "versions": {"stable": "stable", "canary": "canary"},
        "queries": {
            "errors": [sys.executable, "-c", HANGS, pid_file],
            "requests": [sys.executable, "-c", FAILS, pid_file],
        },
    }
    policy = Policy.model_validate(
        {
            "target": {"deployment": "shop"},
            "metrics": source,
            "error_rate_trigger": {"threshold": "5%"},
        }
    )
    provider = make_provider(policy, base_dir=tmp_path)
    query = Query(Signal.ERROR_RATE_PERCENT, Version.CANARY, 60)
    (got,) = await provider.measure([query], now=time.time())
    left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    await provider.aclose()
    assert got.phase is Phase.ERROR, got
    assert "backend refused" in got.reason
    assert left == []
    _wait_gone(pid_file)


def _wait_gone(pid_file: str) -> None:
    """The hanging program was killed (the wait covers only the kernel's reaping of it),
    not waited for until it ended by itself."""
    pid = int(Path(pid_file).read_text())
    wait_until(lambda: not process_running(pid), timeout=5, what=f"errors program {pid} to end")
    assert not Path(pid_file + ".done").exists(), "the errors program ran to its end"
