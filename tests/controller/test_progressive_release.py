"""A progressive release on a simulated clock: steps, holds, rollbacks, hooks, the trail."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from pathlib import Path

import pytest

from rollguard.audit.base import AuditRecord, MemoryAuditSink
from rollguard.controller import Outcome, SimulatedClock, Watcher
from rollguard.engine.evaluate import Evaluation
from rollguard.executors.base import ActionResult
from rollguard.notifiers.log import LogNotifier
from rollguard.policy import Action, parse_policy
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider, RecordingExecutor
from rollguard.timestamps import parse_rfc3339
from servers.receiver import Receiver, receiver

__all__ = ["receiver"]

POLICY = """
target: {deployment: shop}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/metrics", canary: "http://127.0.0.1:2/metrics"}
analysis: {interval: 5s, persistence: 2, no_data_limit: 3}
error_rate_trigger: {increase_percent: 200, compare_with: stable, measurement_window: 1 minute}
promotion:
  steps: [10, 50, 100]
  min_step_duration: 20s
  max_step_duration: 2m
  beta: 0.01
"""


def make(
    extra: str = "", *, canary_errors: float = 1.0, canary_rate: float = 1.0
) -> tuple[InMemoryProvider, RecordingExecutor, MemoryAuditSink, Watcher]:
    """A watcher over an in-memory release: 200 canary and 2,000 stable requests a step."""
    provider = InMemoryProvider(
        {
            (Signal.ERROR_RATE_PERCENT, Version.CANARY): canary_rate,
            (Signal.ERROR_RATE_PERCENT, Version.STABLE): 1.0,
            (Signal.REQUESTS, Version.CANARY): 200.0,
            (Signal.ERRORS, Version.CANARY): canary_errors,
            (Signal.REQUESTS, Version.STABLE): 2000.0,
            (Signal.ERRORS, Version.STABLE): 20.0,
        }
    )
    executor = RecordingExecutor(canary_weight=0)
    audit = MemoryAuditSink()
    watcher = Watcher(
        parse_policy(POLICY + extra),
        provider=provider,
        executor=executor,
        notifier=LogNotifier(),
        audit=audit,
        clock=SimulatedClock(1_000.0),
    )
    return provider, executor, audit, watcher


def _kinds(audit: MemoryAuditSink, kind: str) -> list[AuditRecord]:
    return [record for record in audit.records if record.kind == kind]


async def test_a_healthy_release_is_promoted_step_by_step_with_its_evidence() -> None:
    _, executor, audit, watcher = make()
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.PROMOTED
    assert executor.calls == [
        ("set_canary_weight", 10),
        ("set_canary_weight", 50),
        ("set_canary_weight", 100),
    ]
    steps = _kinds(audit, "promotion_step")
    assert [s.executor_output["canary_weight"] for s in steps] == [10, 50, 100]
    last = steps[-1].executor_output["evidence"][0]
    assert last["test"] == "error_rate_percent:stable"
    assert last["e_value"] >= 100
    started = [r.timestamp for r in audit.records if r.kind in ("promotion_step",)]
    assert len(set(started)) == 3
    assert result.action_outcome is not None
    assert result.action_outcome["promotion_evidence"][0]["e_value"] >= 100
    assert audit.records[-1].kind == "deployment_end"
    assert audit.records[-1].outcome == "promoted"


async def test_each_step_lasts_at_least_its_minimum() -> None:
    _, _, audit, watcher = make()
    await watcher.run(duration_seconds=3600)
    times = [parse_rfc3339(s.timestamp) for s in _kinds(audit, "promotion_step")]
    assert all((b - a).total_seconds() >= 20 for a, b in itertools.pairwise(times))


class FaultWithStep(RecordingExecutor):
    """A release whose fault starts with the step to ``percent``: errors 1 % -> 2 %."""

    def __init__(self, provider: InMemoryProvider, percent: int) -> None:
        super().__init__(canary_weight=0)
        self.provider, self.percent = provider, percent

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        result = await super().set_canary_weight(percent=percent)
        if percent == self.percent:  # too mild for the trigger (x3): only the promotion sees it
            self.provider.set(Signal.ERRORS, Version.CANARY, 4.0)
            self.provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 2.0)
        return result


async def test_with_step_beta_the_last_step_checks_the_evidence_since_every_step() -> None:
    _, _, audit, watcher = make("  step_beta: 1\n")
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.PROMOTED
    steps = _kinds(audit, "promotion_step")
    assert [s.executor_output["canary_weight"] for s in steps] == [10, 50, 100]
    assert steps[1].reason.endswith("every test at or above 1/step_beta = 1")  # 10 -> 50 %
    assert steps[2].reason.endswith("every test since a step began at or above 1/beta = 100")
    [moved] = steps[2].executor_output["evidence"]
    assert moved["e_value"] >= 100
    assert moved["earlier_steps_e_values"][0] >= 100  # the first step's, fed ever since


@pytest.mark.parametrize("step_beta", ["", "  step_beta: 1\n"])
async def test_a_fault_that_starts_with_a_step_holds_that_step(step_beta: str) -> None:
    """Evidence from the previous share does not move the next step: each shows its own.

    The first step is paused for 10 minutes, so its evidence grows far past
    ``1 / beta``; the fault comes with the second step, too mild for the trigger.
    Evidence kept across steps promoted it after ``min_step_duration`` (20 s,
    shorter than the trigger's 1-minute window); fresh evidence holds the step
    until ``max_step_duration`` rolls it back.
    """
    provider = make()[0]
    audit = MemoryAuditSink()
    executor = FaultWithStep(provider, 50)
    clock = SimulatedClock(1_000.0)
    watcher = Watcher(
        parse_policy(POLICY + "  on_max_duration: rollback\n" + step_beta),
        provider=provider,
        executor=executor,
        notifier=LogNotifier(),
        audit=audit,
        clock=clock,
    )
    watcher.hold("an operator")

    def resume_after_ten_minutes(_: Evaluation) -> None:
        if clock.now() >= 1_600.0:
            watcher.unhold()

    watcher.on_evaluation = resume_after_ten_minutes
    result = await watcher.run(duration_seconds=3600)
    calls = [("set_canary_weight", 10), ("set_canary_weight", 50), ("rollback", None)]
    assert executor.calls == calls
    assert result.outcome is Outcome.ROLLED_BACK
    assert "step 50% reached max_step_duration" in result.reason
    moved = _kinds(audit, "promotion_step")[-1].executor_output["evidence"][0]
    assert moved["e_value"] >= 1e20  # the first step was shown no worse, overwhelmingly ...
    assert watcher.progress is not None
    assert watcher.progress.last is not None
    held = watcher.progress.last.evidence[0]
    assert held["e_value"] < 1  # ... the second, at 2 %, counts against itself alone
    assert held["canary_events"] == 4.0 * held["intervals"]  # fed only at 50 %


async def test_no_data_never_promotes_and_holds_at_the_first_step() -> None:
    provider, executor, _audit, watcher = make()
    provider.set(Signal.REQUESTS, Version.CANARY, None)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert "held at 10% for an operator" in result.reason
    assert executor.calls == [("set_canary_weight", 10)]
    assert executor.canary_weight == 10


async def test_a_bad_release_is_not_promoted_and_the_timeout_can_roll_it_back() -> None:
    """Errors 1 % -> 2 %: inside the margin's null; on_max_duration: rollback."""
    _provider, executor, _audit, watcher = make(
        "  on_max_duration: rollback\n", canary_errors=4.0, canary_rate=2.0
    )
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.trigger == "promotion"
    assert executor.calls == [("set_canary_weight", 10), ("rollback", None)]


async def test_a_firing_trigger_rolls_back_mid_promotion_and_calls_on_rollback(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "rolled-back"
    hook = f"  hooks: {{on_rollback: {{command: [/usr/bin/touch, '{marker}']}}}}\n"
    provider, _executor, audit, watcher = make(hook)
    provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 9.0)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.action is Action.IMMEDIATE_ROLLBACK
    assert result.trigger == "error_rate_trigger"
    assert marker.exists()
    hooks = _kinds(audit, "hook")
    assert [(h.reason, h.outcome) for h in hooks] == [("on_rollback: exit code 0", "success")]


async def test_a_failing_confirm_step_hook_fails_the_release() -> None:
    hook = "  hooks: {confirm_step: {command: [/bin/sh, -c, 'echo no; exit 3']}}\n"
    _, executor, audit, watcher = make(hook)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.ROLLED_BACK
    assert "hook confirm_step failed: exit code 3" in result.reason
    assert executor.calls == [("set_canary_weight", 10), ("rollback", None)]
    (called,) = _kinds(audit, "hook")
    assert called.executor_output["stdout"] == "no\n"
    assert called.outcome == "failure"


async def test_a_holding_confirm_promotion_hook_keeps_the_share_until_the_maximum(
    receiver: Receiver,
) -> None:
    receiver.statuses = [503] * 100
    hook = f"  hooks: {{confirm_promotion: {{url: '{receiver.url}', on_failure: hold}}}}\n"
    _, executor, audit, watcher = make(hook)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert "held at 50% for an operator" in result.reason
    assert executor.calls == [("set_canary_weight", 10), ("set_canary_weight", 50)]
    asked = _kinds(audit, "hook")
    assert len(asked) > 1  # asked again at every interval while held
    assert {h.reason for h in asked} == {"confirm_promotion: answered HTTP 503"}


async def test_an_http_hook_is_signed_and_its_answer_decides(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    hooks = (
        f"  hooks:\n    pre_rollout: {{url: '{receiver.url}/pre', secret_env: HOOK_SECRET}}\n"
        f"    post_rollout: {{url: '{receiver.url}/post'}}\n"
    )
    receiver.statuses_by_path["/post"] = [500]
    _, _, audit, watcher = make(hooks)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.PROMOTED  # post_rollout's failure is recorded only
    pre, post = receiver.requests
    body = json.loads(pre.body)
    assert body["hook"] == "pre_rollout"
    assert body["deployment"] == "shop"
    stamp = pre.headers["X-Rollguard-Timestamp"]
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + pre.body, hashlib.sha256)
    assert pre.headers["X-Rollguard-Signature"] == "sha256=" + expected.hexdigest()
    assert "X-Rollguard-Signature" not in post.headers
    assert [(h.reason, h.outcome) for h in _kinds(audit, "hook")] == [
        ("pre_rollout: HTTP 200", "success"),
        ("post_rollout: answered HTTP 500", "failure"),
    ]


async def test_a_pre_rollout_hook_that_times_out_fails_before_any_traffic(
    receiver: Receiver,
) -> None:
    receiver.delay_seconds = 2.0
    _, executor, _audit, watcher = make(
        f"  hooks: {{pre_rollout: {{url: '{receiver.url}', timeout: 0.2s}}}}\n"
    )
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.ROLLED_BACK
    assert "no answer within 0.2s" in result.reason
    assert ("set_canary_weight", 10) not in executor.calls


async def test_each_shown_evaluation_carries_this_intervals_promotion_evidence() -> None:
    """What ``watch`` prints: the verdict fed with the same interval as the triggers."""
    _, _, _, watcher = make()
    shown: list[tuple[float, float | None]] = []

    def show(evaluation: object) -> None:
        assert watcher.progress is not None
        last = watcher.progress.last
        assert last is not None
        shown.append((watcher.clock.now(), last.state.at))

    watcher.on_evaluation = show
    await watcher.run(duration_seconds=3600)
    assert shown
    assert all(at == fed for at, fed in shown)


async def test_watch_json_lines_carry_the_promotion_evidence() -> None:
    from rollguard.cli import render

    _, _, _, watcher = make()
    lines: list[dict[str, object]] = []

    def show(evaluation: Evaluation) -> None:
        assert watcher.progress is not None
        assert watcher.progress.last is not None
        promotion = {"reason": watcher.progress.last.reason, "step": watcher.progress.index + 1}
        lines.append(
            json.loads(render.evaluation_json(evaluation, deployment="shop", promotion=promotion))
        )

    watcher.on_evaluation = show
    await watcher.run(duration_seconds=3600)
    reasons = [line["promotion"]["reason"] for line in lines]  # type: ignore[index]
    assert any("e-value" in str(r) for r in reasons)
    assert "every test at or above 1/beta" in str(reasons[-1])
