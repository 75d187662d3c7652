"""Every error rollguard raises on purpose, and the exit code each one maps to.

The CLI catches :class:`RollguardError`, prints its message (never a traceback)
and exits with ``exit_code``. Each backend translates its library's exceptions
at its own edge with ``raise Ours(...) from exc``.

    RollguardError                      exit 2 unless stated
    ├── UsageError                      bad command-line arguments
    ├── PolicyError                     invalid policy: one or more PolicyProblems
    ├── InputError                      a malformed input file (CSV, report, baseline)
    ├── ProviderError                   a metrics source could not be used at all
    ├── ExecutorError                   an action could not be carried out
    ├── AuditError                      the audit store is unusable or inconsistent
    │   └── audit.keys.KeyMismatchError   a key that does not fit a keyed/unkeyed trail
    └── LockedError                     another watcher holds the deployment's lock

Exit codes (documented in the README and in ``rollguard --help``):
0 healthy, 1 rolled back, 2 usage or invalid input, 3 blocked, 4 inconclusive,
5 an action failed, 6 the audit trail is broken.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; CI pipelines branch on these."""

    HEALTHY = 0
    ROLLED_BACK = 1
    INVALID = 2
    BLOCKED = 3
    INCONCLUSIVE = 4
    ACTION_FAILED = 5
    AUDIT_BROKEN = 6


class RollguardError(Exception):
    """Root of every error a user may see; carries its exit code."""

    exit_code: ExitCode = ExitCode.INVALID


class UsageError(RollguardError):
    """The command line asked for something that cannot be done."""


@dataclass(frozen=True)
class PolicyProblem:
    """One problem in a policy file, located in its YAML source."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.field}: {self.message}"


class PolicyError(RollguardError):
    """A policy failed to load; ``problems`` holds every problem found."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


class InputError(RollguardError):
    """A data file (replay CSV, baseline, scanner report) is malformed."""


class ProviderError(RollguardError):
    """A metrics provider cannot be used at all (not a transient no-data)."""


class ExecutorError(RollguardError):
    """An executor could not carry out an action."""

    exit_code = ExitCode.ACTION_FAILED


class AuditError(RollguardError):
    """The audit store cannot be opened, written or trusted."""

    exit_code = ExitCode.AUDIT_BROKEN


class LockedError(RollguardError):
    """Another watcher already owns this deployment."""
