"""A watch whose one trigger is breached from the first evaluation, on a simulated clock.

The fall-back tests run it against the real test cluster and read what the action
did from the audit records and the API server.
"""

from __future__ import annotations

import time
from pathlib import Path

from rollguard.audit.base import MemoryAuditSink
from rollguard.controller.assemble import Overrides, assemble
from rollguard.controller.clock import SimulatedClock
from rollguard.controller.drill_feed import build_feed
from rollguard.controller.watch import WatchResult
from rollguard.executors.base import Executor
from rollguard.notifiers.silent import SilentNotifier
from rollguard.policy import parse_policy


async def watch_breached(
    policy_text: str, audit: MemoryAuditSink, base: Path, executor: Executor | None = None
) -> WatchResult:
    """Watch six intervals; ``executor`` when given, else the one the policy names."""
    policy = parse_policy(policy_text)
    [rule] = policy.rules
    provider, _ = build_feed(policy, rule, None)  # the canary's error rate breaches
    watcher = assemble(
        policy,
        Overrides(
            base_dir=base,
            signals=provider,
            executor=executor,
            notifier=SilentNotifier(),
            audit=audit,
            clock=SimulatedClock(time.time()),
        ),
    )
    return await watcher.run(duration_seconds=policy.analysis.interval * 6)
