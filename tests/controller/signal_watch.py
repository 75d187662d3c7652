"""A real ``rollguard watch`` over the file executor: ``signal_watch.py STATE WATCH-ARGS...``.

The CLI as shipped (its options, its SIGINT/SIGTERM handling, its output); only
the backends are swapped, so the process is cheap: the deployment lives in the
STATE file (:mod:`file_executor`, which outlives the process) and the metrics
are a healthy canary's in-memory counts, on the wall clock. The signal tests
stop it mid-promotion and start the next one.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from file_executor import FileExecutor

from rollguard.cli import watch_run
from rollguard.cli.main import run
from rollguard.controller import assemble as assembly
from rollguard.controller.watch import Watcher
from rollguard.policy.model import Policy
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider


def healthy_canary() -> InMemoryProvider:
    """A canary as good as stable (0.5 % errors), with enough requests each interval
    for the promotion test to accept a step in a few seconds of 0.2 s intervals."""
    return InMemoryProvider(
        {
            (Signal.ERROR_RATE_PERCENT, Version.STABLE): 0.5,
            (Signal.ERROR_RATE_PERCENT, Version.CANARY): 0.5,
            (Signal.REQUESTS, Version.CANARY): 4000.0,
            (Signal.ERRORS, Version.CANARY): 20.0,
            (Signal.REQUESTS, Version.STABLE): 40000.0,
            (Signal.ERRORS, Version.STABLE): 200.0,
        }
    )


def main() -> None:
    state = Path(sys.argv.pop(1))

    def assemble(policy: Policy, overrides: assembly.Overrides) -> Watcher:
        swapped = replace(
            overrides,
            executor=FileExecutor(state),
            metrics=healthy_canary(),
        )
        return assembly.assemble(policy, swapped)

    watch_run.assemble = assemble  # type: ignore[assignment] (same signature)
    sys.argv[0] = "rollguard"
    run()


if __name__ == "__main__":
    main()
