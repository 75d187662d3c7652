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
    ├── LockedError                     another watcher holds the deployment's lock
    ├── HeldError                       a release hook held an operator's promote
    └── RefusedError                    exit 7: serve refused a manual gate (``release``)

The exit codes are :class:`ExitCode`; :data:`EXIT_CODE_TABLE` says what each
means, and the README's table and ``rollguard --help`` are generated from it
(a test keeps the README in step).
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
    REFUSED = 7
    INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
    BROKEN_PIPE = 141  # 128 + SIGPIPE
    TERMINATED = 143  # 128 + SIGTERM


@dataclass(frozen=True)
class ExitCodeRow:
    """One row of the exit-code table: the codes, a short label, what they mean."""

    codes: tuple[ExitCode, ...]
    label: str
    meaning: str


#: Every exit code rollguard documents, in the order the README lists them.
EXIT_CODE_TABLE: tuple[ExitCodeRow, ...] = (
    ExitCodeRow(
        (ExitCode.HEALTHY,),
        "healthy",
        "healthy for the whole watch / gate passed / policy valid / no action in a backtest",
    ),
    ExitCodeRow(
        (ExitCode.ROLLED_BACK,),
        "rolled back",
        "rolled back (or `backtest`: an action would have been taken)",
    ),
    ExitCodeRow(
        (ExitCode.INVALID,),
        "invalid input",
        "usage error or invalid input (policy, report, CSV, baseline)",
    ),
    ExitCodeRow((ExitCode.BLOCKED,), "blocked", "deployment blocked by a gate"),
    ExitCodeRow(
        (ExitCode.INCONCLUSIVE,),
        "inconclusive",
        "inconclusive: no data for too long to judge",
    ),
    ExitCodeRow(
        (ExitCode.ACTION_FAILED,),
        "action failed",
        "an action failed (the rollback could not be completed)",
    ),
    ExitCodeRow(
        (ExitCode.AUDIT_BROKEN,),
        "audit broken",
        "the audit trail is broken or unusable",
    ),
    ExitCodeRow(
        (ExitCode.REFUSED,),
        "refused",
        "`release`: serve refused the command in the deployment's current status, or a "
        "release hook held it",
    ),
    ExitCodeRow(
        (ExitCode.INTERRUPTED, ExitCode.TERMINATED),
        "interrupted",
        "stopped by SIGINT (Ctrl-C) or SIGTERM; a watch first records `deployment_end` "
        "with outcome `interrupted` and the signal; a progressive release stays at its "
        "step for the next watch",
    ),
    ExitCodeRow(
        (ExitCode.BROKEN_PIPE,),
        "stdout closed",
        "stdout was closed early (`\\| head`) by a command that only prints; `watch` keeps "
        "watching and exits with its outcome instead",
    ),
)


def exit_codes_help() -> str:
    """The one line ``rollguard --help`` ends with."""
    rows = " · ".join(
        f"{', '.join(str(int(code)) for code in row.codes)} {row.label}" for row in EXIT_CODE_TABLE
    )
    return f"Exit codes: {rows}."


def exit_codes_markdown() -> str:
    """The README's exit-code table."""
    lines = ["| code | meaning |", "| --- | --- |"]
    for row in EXIT_CODE_TABLE:
        lines.append(f"| {', '.join(str(int(c)) for c in row.codes)} | {row.meaning} |")
    return "\n".join(lines)


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


class HeldError(RollguardError):
    """A release hook (``confirm_promotion``) held an operator's promote: nothing moved."""


class RefusedError(RollguardError):
    """``serve`` refused a manual gate: not in this status, or a release hook held it."""

    exit_code = ExitCode.REFUSED
