"""rollguard's front door: the public names, exported once, each one real."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rollguard

EXPORTED = [
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


def test_the_exported_names_are_exactly_these() -> None:
    assert rollguard.__all__ == EXPORTED
    assert sorted(rollguard._HOMES) == EXPORTED  # each name has one home module


@pytest.mark.parametrize("name", EXPORTED)
def test_each_exported_name_is_the_object_its_module_defines(name: str) -> None:
    value = getattr(rollguard, name)
    assert getattr(value, "__name__", name) == name
    assert name in dir(rollguard)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'watch'"):
        _ = rollguard.watch  # type: ignore[attr-defined]


def test_importing_rollguard_loads_nothing_heavy() -> None:
    probe = (
        "import sys, rollguard; print(sorted(m for m in ('pydantic', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
