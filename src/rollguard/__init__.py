"""rollguard: watch a release, decide, roll back, and keep an audit trail.

The names a program built on rollguard may import are exported here, once
(``__all__``; tests/test_exported_members.py keeps the list). They load on
first use, so ``import rollguard`` (and ``rollguard --help``) stays fast::

    import rollguard

    policy = rollguard.load_policy("rollguard.yaml")
    watcher = rollguard.assemble(policy, rollguard.Overrides(base_dir=Path(".")))
    result = await watcher.run(duration_seconds=600)

Fakes for tests of such programs are in :mod:`rollguard.testing`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Each public name and the module it lives in.
_HOMES = {
    # policies
    "Action": "rollguard.policy.actions",
    "Policy": "rollguard.policy.model",
    "Severity": "rollguard.policy.actions",
    "Trigger": "rollguard.policy.triggers",
    "load_policy": "rollguard.policy.load",
    "parse_policy": "rollguard.policy.load",
    # measurements
    "Measurement": "rollguard.signals",
    "Phase": "rollguard.signals",
    "Provider": "rollguard.metrics.base",
    "Query": "rollguard.signals",
    "Signal": "rollguard.signals",
    "Version": "rollguard.signals",
    # decisions
    "Decision": "rollguard.engine.decision",
    "Evaluation": "rollguard.engine.evaluate",
    "TriggerStatus": "rollguard.engine.decision",
    "Verdict": "rollguard.engine.decision",
    "evaluate": "rollguard.engine.evaluate",
    # the watch loop
    "Clock": "rollguard.controller.clock",
    "Outcome": "rollguard.controller.watch",
    "Overrides": "rollguard.controller.assemble",
    "SimulatedClock": "rollguard.controller.clock",
    "SystemClock": "rollguard.controller.clock",
    "WatchResult": "rollguard.controller.watch",
    "Watcher": "rollguard.controller.watch",
    "assemble": "rollguard.controller.assemble",
    "run_backtest": "rollguard.controller.backtest",
    # actions, notifications, the audit trail
    "ActionResult": "rollguard.executors.base",
    "Executor": "rollguard.executors.base",
    "RecordingExecutor": "rollguard.executors.recording",
    "TargetStatus": "rollguard.executors.base",
    "Notification": "rollguard.notifiers.base",
    "Notifier": "rollguard.notifiers.base",
    "AuditRecord": "rollguard.audit.base",
    "AuditSink": "rollguard.audit.base",
    "MemoryAuditSink": "rollguard.audit.base",
    "open_store": "rollguard.audit.factory",
    # errors and exit codes
    "ExitCode": "rollguard.errors",
    "InputError": "rollguard.errors",
    "PolicyError": "rollguard.errors",
    "RollguardError": "rollguard.errors",
}

__all__ = [
    "Action",
    "ActionResult",
    "AuditRecord",
    "AuditSink",
    "Clock",
    "Decision",
    "Evaluation",
    "Executor",
    "ExitCode",
    "InputError",
    "Measurement",
    "MemoryAuditSink",
    "Notification",
    "Notifier",
    "Outcome",
    "Overrides",
    "Phase",
    "Policy",
    "PolicyError",
    "Provider",
    "Query",
    "RecordingExecutor",
    "RollguardError",
    "Severity",
    "Signal",
    "SimulatedClock",
    "SystemClock",
    "TargetStatus",
    "Trigger",
    "TriggerStatus",
    "Verdict",
    "Version",
    "WatchResult",
    "Watcher",
    "assemble",
    "evaluate",
    "load_policy",
    "open_store",
    "parse_policy",
    "run_backtest",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rollguard' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found once, then a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from rollguard.audit.base import AuditRecord, AuditSink, MemoryAuditSink
    from rollguard.audit.factory import open_store
    from rollguard.controller.assemble import Overrides, assemble
    from rollguard.controller.backtest import run_backtest
    from rollguard.controller.clock import Clock, SimulatedClock, SystemClock
    from rollguard.controller.watch import Outcome, Watcher, WatchResult
    from rollguard.engine.decision import Decision, TriggerStatus, Verdict
    from rollguard.engine.evaluate import Evaluation, evaluate
    from rollguard.errors import ExitCode, InputError, PolicyError, RollguardError
    from rollguard.executors.base import ActionResult, Executor, TargetStatus
    from rollguard.executors.recording import RecordingExecutor
    from rollguard.metrics.base import Provider
    from rollguard.notifiers.base import Notification, Notifier
    from rollguard.policy.actions import Action, Severity
    from rollguard.policy.load import load_policy, parse_policy
    from rollguard.policy.model import Policy
    from rollguard.policy.triggers import Trigger
    from rollguard.signals import Measurement, Phase, Query, Signal, Version
