"""Actions, severities and the order in which they win."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What rollguard does when a trigger fires."""

    CONTINUE = "continue"
    IMMEDIATE_ROLLBACK = "immediate_rollback"
    GRADUAL_ROLLBACK = "gradual_rollback_with_traffic_shifting"
    SCALING_AND_ROLLBACK = "scaling_and_rollback"
    TRAFFIC_ISOLATION_AND_ROLLBACK = "traffic_isolation_and_rollback"
    DEPLOYMENT_BLOCK = "deployment_block"


#: Other spellings, as other rollback tools' docs write them.
ACTION_ALIASES: dict[str, Action] = {
    "immediate_deployment_block": Action.DEPLOYMENT_BLOCK,
    "block": Action.DEPLOYMENT_BLOCK,
    "gradual_rollback": Action.GRADUAL_ROLLBACK,
    "rollback": Action.IMMEDIATE_ROLLBACK,
    "isolate": Action.TRAFFIC_ISOLATION_AND_ROLLBACK,
}


class Severity(StrEnum):
    """How bad a decision is, in three levels."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


#: Higher wins when several triggers fire at once (docs/policy.md; docs/architecture.md, "Decide").
PRIORITY: dict[Action, int] = {
    Action.DEPLOYMENT_BLOCK: 50,
    Action.IMMEDIATE_ROLLBACK: 50,
    Action.TRAFFIC_ISOLATION_AND_ROLLBACK: 40,
    Action.SCALING_AND_ROLLBACK: 30,
    Action.GRADUAL_ROLLBACK: 20,
    Action.CONTINUE: 0,
}

DEFAULT_SEVERITY: dict[Action, Severity] = {
    Action.DEPLOYMENT_BLOCK: Severity.CRITICAL,
    Action.IMMEDIATE_ROLLBACK: Severity.CRITICAL,
    Action.TRAFFIC_ISOLATION_AND_ROLLBACK: Severity.CRITICAL,
    Action.SCALING_AND_ROLLBACK: Severity.WARNING,
    Action.GRADUAL_ROLLBACK: Severity.WARNING,
    Action.CONTINUE: Severity.INFO,
}


#: The names :func:`parse_action` reads, as a schema pattern (any case, blanks around).
ACTION_PATTERN = (
    r"(?i)^\s*("
    + "|".join(sorted([action.value for action in Action] + list(ACTION_ALIASES)))
    + r")\s*$"
)


def parse_action(raw: object) -> Action:
    """An :class:`Action` from its name or one of :data:`ACTION_ALIASES`."""
    if isinstance(raw, Action):
        return raw
    if isinstance(raw, str):
        name = raw.strip().lower()
        if name in ACTION_ALIASES:
            return ACTION_ALIASES[name]
        try:
            return Action(name)
        except ValueError:
            pass
    known = ", ".join(sorted([a.value for a in Action] + list(ACTION_ALIASES)))
    raise ValueError(f"unknown action {raw!r}; expected one of: {known}")


def gradual_canary_percent(start_percent: int, to_stable_percent: int) -> int:
    """The canary's weight once ``to_stable_percent`` % of the traffic it had is on stable.

    A gradual rollback's steps are shares of the canary's own traffic when the
    rollback began, so a canary at 20 % goes 15, 10, 5, 0 and never gains traffic.
    """
    return round(start_percent * (100 - to_stable_percent) / 100)
