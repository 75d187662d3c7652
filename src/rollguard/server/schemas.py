"""Request and response bodies of the HTTP API: the OpenAPI spec is generated from these."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Command(StrEnum):
    """Operator commands on one deployment."""

    ABORT = "abort"
    PAUSE = "pause"
    RESUME = "resume"
    PROMOTE = "promote"
    RETRY = "retry"


class CommandBody(BaseModel):
    """Optional body of a command: why the operator acted (kept in the audit trail)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)
    on_behalf_of: str = Field(
        default="",
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="Whom the client asks for (the CLI's --as, or its OS user); recorded "
        "beside the token's name, not verified",
    )


class ReleaseBody(BaseModel):
    """A new release of the deployment began (from CI): watch it from the start."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    reason: str = Field(default="", max_length=500)


class ReleaseResult(BaseModel):
    deployment: str
    version: str
    status: str


class CommandResult(BaseModel):
    deployment: str
    command: Command
    status: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: a short code and a readable detail."""

    error: str
    detail: Any = None


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    deployments: int
    policy_errors: int


class PolicyFailureBody(BaseModel):
    file: str
    line: int
    column: int
    field: str
    message: str
    location: str


class Weights(BaseModel):
    """Traffic percent per version, as the executor reports it."""

    stable: int | None
    canary: int | None
    assumed: str | None = Field(
        default=None,
        description="Why the split is only what the executor was told, not read back "
        "(the noop executor; a command executor without a status command); null when read",
    )


class SignalRow(BaseModel):
    """One trigger's last measurement against its limit."""

    trigger: str
    signal: str
    status: str
    value: float | None
    limit: float | None
    reference: float | None
    reference_source: str | None
    method: str = Field(
        description="`threshold`, or `sequential`: value is the e-value, limit is 1/alpha"
    )
    window_seconds: float
    requests: float | None
    action: str
    reason: str


class TimelineItem(BaseModel):
    at: str
    kind: str
    message: str
    trigger: str | None
    action: str | None
    evidence: list[dict[str, Any]]


class DeploymentSummary(BaseModel):
    name: str
    policy: str
    policy_file: str
    status: str
    canary_weight: int | None
    evaluations: int
    updated_at: str | None
    last_action: str | None
    last_trigger: str | None


class PromotionView(BaseModel):
    """A progressive release: its step, the promotion test's evidence, the next step."""

    step: int
    of: int
    canary_weight: int
    next_weight: int | None
    step_seconds: float
    min_step_seconds: float
    max_step_seconds: float
    held_by: str | None = Field(description="Who paused the release at this step, if anyone")
    accepted: bool = Field(description="The evidence shows the canary no worse (at 1/beta)")
    reason: str
    evidence: list[dict[str, Any]]


class DeploymentDetail(DeploymentSummary):
    policy_digest: str
    canary_state: str
    weights: Weights
    started_at: str | None
    signals: list[SignalRow]
    last_decision: dict[str, Any] | None
    outcome: dict[str, Any] | None
    error: str | None
    release: str | None = Field(description="The release being watched, when CI posted it")
    promotion: PromotionView | None = Field(
        default=None, description="A progressive release's step and evidence (promotion:)"
    )
    timeline: list[TimelineItem]


class HistoryTrigger(BaseModel):
    """One trigger's evaluations in the window, as columns of equal length."""

    trigger: str
    signal: str
    method: str = Field(description="`threshold` or `sequential` (value: e-value, limit: 1/alpha)")
    at: list[float] = Field(description="Evaluation times, seconds since the epoch (UTC)")
    value: list[float | None] = Field(description="The canary's value (sequential: e-value)")
    reference: list[float | None] = Field(description="Stable's or the baseline's value")
    limit: list[float | None] = Field(description="The limit compared with (sequential: 1/alpha)")


class HistoryEvent(BaseModel):
    at: str
    kind: str = Field(description="`decision`, `action` or `weight` (a traffic change read back)")
    message: str
    canary_weight: int | None


class DeploymentHistory(BaseModel):
    """``GET /api/v1/deployments/{name}/history``: the last hour, bounded."""

    window_seconds: float
    interval_seconds: float
    capacity: int = Field(description="Most evaluations kept per trigger")
    triggers: list[HistoryTrigger]
    events: list[HistoryEvent]


class DeploymentList(BaseModel):
    deployments: list[DeploymentSummary]
    policy_errors: list[PolicyFailureBody]


class AuditList(BaseModel):
    backend: str = Field(description="`store` (SQLite/PostgreSQL) or `memory` (this process)")
    entries: list[dict[str, Any]]


class RollbackRow(BaseModel):
    name: str
    status: str
    rolled_back: bool
    action: str | None
    trigger: str | None
    reason: str | None
    at: str | None


class RollbackStatus(BaseModel):
    """``GET /rollback/status``."""

    rolled_back: bool
    deployments: list[RollbackRow]


class DeploymentStatusRow(BaseModel):
    name: str
    status: str
    blocked: bool
    canary_weight: int | None


class DeploymentStatus(BaseModel):
    """``GET /deployment/status``."""

    deployments: list[DeploymentStatusRow]
