"""Backtest: replay a recorded series through a policy on a simulated clock.

The loop is the very :class:`~rollguard.controller.watch.Watcher` ``watch``
runs, assembled the same way (runtime security included), on a simulated
clock from the recording's first row, at every analysis interval. It stops at
the first action, as the rollout would have; the action goes to a recording
executor (nothing is executed), nobody is notified, and the watch's entries
stay in memory. Unlike ``watch`` it carries on through inconclusive verdicts,
so a month of data is judged to its end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollguard.audit.base import MemoryAuditSink
from rollguard.baseline import Baseline
from rollguard.controller.assemble import Overrides, assemble
from rollguard.controller.clock import SimulatedClock
from rollguard.engine.decision import Verdict
from rollguard.engine.evaluate import Evaluation
from rollguard.executors.recording import RecordingExecutor
from rollguard.metrics.replay import ReplayProvider
from rollguard.notifiers.silent import SilentNotifier
from rollguard.policy.model import Policy
from rollguard.signals import Version
from rollguard.timestamps import rfc3339


@dataclass
class BacktestResult:
    """What would have happened: every evaluation, and the first action if any."""

    policy: Policy
    interval_seconds: float
    evaluations: list[Evaluation] = field(default_factory=list)
    rfc3339: bool = False
    fallbacks: dict[str, str] = field(default_factory=dict)

    @property
    def first_action(self) -> Evaluation | None:
        """The evaluation that decided to act, or None."""
        acted = [e for e in self.evaluations if e.decision.verdict is Verdict.ACT]
        return acted[0] if acted else None

    def time_label(self, at: float) -> float | str:
        """``at`` as the CSV gave it: seconds since start, or RFC 3339."""
        if self.rfc3339:
            return rfc3339(at, "auto")
        return at

    def as_dict(self) -> dict[str, Any]:
        first = self.first_action
        first_dict = None
        if first is not None:
            decision = first.decision
            evidence = next(
                (e.as_dict() for e in decision.evidence if e.trigger == decision.trigger), {}
            )
            first_dict = {
                "time": self.time_label(first.at),
                "action": decision.action.value,
                "trigger": decision.trigger,
                "reason": decision.reason,
                "evidence": json_safe(evidence),
            }
        return {
            "fallbacks": self.fallbacks,
            "evaluations": len(self.evaluations),
            "interval_seconds": self.interval_seconds,
            "first_action": first_dict,
            "decisions": [self._decision(e) for e in self.evaluations],
        }

    def _decision(self, evaluation: Evaluation) -> dict[str, Any]:
        decision = evaluation.decision
        return {
            "time": self.time_label(evaluation.at),
            "verdict": decision.verdict.value,
            "action": decision.action.value,
            "trigger": decision.trigger,
            "reason": decision.reason,
            "triggers": {
                r.trigger: json_safe(
                    {
                        "status": r.status.value,
                        "method": r.evidence.method,
                        "value": r.evidence.value,
                        "limit": r.evidence.limit,
                    }
                )
                for r in evaluation.results
            },
        }


def interval_for(policy: Policy, provider: ReplayProvider) -> float:
    """The policy's interval, or the recording's row step when rows are sparser.

    Per-interval count queries over a window shorter than the rows' spacing
    would see empty windows between rows and report no data.
    """
    steps = [provider.recording.step(v) for v in Version]
    step = max((s for s in steps if s is not None), default=0.0)
    return max(policy.analysis.interval, step)


async def run_backtest(
    policy: Policy,
    provider: ReplayProvider,
    *,
    baseline: Baseline | None = None,
    base_dir: Path = Path(),
) -> BacktestResult:
    """Watch the recording with the policy, every interval, until the first action.

    ``base_dir`` is where the policy's relative paths (an access log) resolve.
    """
    interval = interval_for(policy, provider)
    if interval != policy.analysis.interval:
        analysis = policy.analysis.model_copy(update={"interval": interval})
        policy = policy.model_copy(update={"analysis": analysis})
    result = BacktestResult(
        policy=policy, interval_seconds=interval, rfc3339=provider.recording.rfc3339
    )
    if not provider.rows:
        return result
    watcher = assemble(
        policy,
        Overrides(
            base_dir=base_dir,
            metrics=provider,
            executor=RecordingExecutor(canary_weight=policy.rollback.canary_weight),
            notifier=SilentNotifier(),
            audit=MemoryAuditSink(),
            clock=SimulatedClock(provider.start),
            baseline=baseline,
            on_evaluation=result.evaluations.append,
            judge_to_end=True,
        ),
    )
    result.fallbacks = watcher.fallbacks
    try:
        await watcher.run(duration_seconds=provider.end - provider.start)
    finally:
        await watcher.provider.aclose()
    return result


def json_safe(value: Any) -> Any:
    """NaN and infinities become None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
