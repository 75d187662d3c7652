"""The ``promotion:`` section: progressive delivery, step by step, on evidence.

The canary's share rises through ``steps``. A step moves on once the
promotion test (:mod:`rollguard.engine.promotion`) shows, with a false-promotion
chance of at most ``beta``, that the canary is no worse than its reference
within the margin, and ``min_step_duration`` has passed; a step that reaches
``max_step_duration`` first does what ``on_max_duration`` says. Release hooks
(``hooks:``) can hold or fail the release; docs/promotion.md has the details.
"""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, HttpUrl, field_validator, model_validator

from rollguard.policy.envnames import EnvName
from rollguard.policy.triggers import FieldError, Seconds, StrictModel
from rollguard.signals import Signal

#: Signals the promotion test judges (engine/promotion.py).
PROMOTION_SIGNALS = frozenset({Signal.ERROR_RATE_PERCENT, Signal.LATENCY_P95_MS})

#: The hooks a release calls, in the order they can happen.
HOOK_NAMES = ("pre_rollout", "confirm_step", "confirm_promotion", "post_rollout", "on_rollback")


class Hook(StrictModel):
    """One release hook: an HTTP POST (signed when ``secret_env`` is set) or a command.

    A hook succeeds on HTTP 2xx or exit code 0 within ``timeout``. Otherwise
    ``on_failure`` says what the release does: ``hold`` (keep the current
    share and ask again at the next evaluation) or ``fail`` (roll back).
    ``post_rollout`` and ``on_rollback`` come after the fact: their failure is
    recorded and changes nothing.
    """

    url: HttpUrl | None = None
    secret_env: EnvName | None = None
    command: list[str] | None = None
    timeout: Seconds = 10.0
    on_failure: Literal["hold", "fail"] = "fail"

    @model_validator(mode="after")
    def _one_target(self) -> Hook:
        if (self.url is None) == (self.command is None):
            raise ValueError("a hook needs exactly one of url: or command:")
        if self.command is not None and not self.command:
            raise FieldError(("command",), "needs at least the program to run")
        if self.secret_env is not None and self.url is None:
            raise FieldError(("secret_env",), "signs an HTTP hook; a command hook has no signature")
        return self


class Hooks(StrictModel):
    """The release's hooks, each optional."""

    pre_rollout: Hook | None = None
    confirm_step: Hook | None = None
    confirm_promotion: Hook | None = None
    post_rollout: Hook | None = None
    on_rollback: Hook | None = None


class Promotion(StrictModel):
    """Steps of the canary's traffic share and how evidence moves it on.

    ``margin_ratio`` and ``margin_points`` state "no worse": the canary's error
    rate (or share of slow requests) at most ``margin_ratio`` x the reference's
    + ``margin_points`` percentage points. ``beta`` bounds the chance of
    promoting a release that is worse than that, however long it is watched.
    ``step_beta`` (default: ``beta``) is the looser bound of a step before the
    last; the move to 100 % then checks the evidence since every step began.
    """

    steps: list[int] = Field(default=[5, 10, 25, 50, 100], min_length=1)
    min_step_duration: Seconds = 30.0
    max_step_duration: Seconds = 600.0
    on_max_duration: Literal["hold", "promote", "rollback"] = "hold"
    beta: float = Field(default=0.01, gt=0, lt=0.5)
    step_beta: float | None = Field(default=None, gt=0, le=1)
    margin_ratio: float = Field(default=1.5, ge=1.0)
    margin_points: float = Field(default=0.0, ge=0.0, le=100.0)
    hooks: Hooks = Hooks()

    @field_validator("steps")
    @classmethod
    def _rising_to_all(cls, steps: list[int]) -> list[int]:
        for step in steps:
            if not 0 < step <= 100:
                raise ValueError(f"each step is a canary share in percent, 1-100 (got {step})")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"steps must rise (got {steps})")
        if steps[-1] != 100:
            raise ValueError(f"the last step must be 100 (all traffic on the canary), got {steps}")
        return steps

    @model_validator(mode="after")
    def _durations(self) -> Promotion:
        if self.max_step_duration < self.min_step_duration:
            raise FieldError(
                ("max_step_duration",),
                f"max_step_duration ({self.max_step_duration:g}s) is shorter than "
                f"min_step_duration ({self.min_step_duration:g}s)",
            )
        if self.step_beta is not None and self.step_beta < self.beta:
            raise FieldError(
                ("step_beta",),
                f"step_beta ({self.step_beta:g}) is below beta ({self.beta:g}): a step "
                "before the last cannot need more evidence than the promotion itself",
            )
        if self.margin_ratio == 1.0 and self.margin_points == 0.0:
            raise FieldError(
                ("margin_ratio",),
                "margin_ratio 1 and margin_points 0 leave no margin: no evidence can show "
                "a canary as good as stable to be no worse (raise one of them)",
            )
        return self
