"""Assemble a :class:`Watcher` from a policy: provider, executor, notifier, audit, baseline."""

from __future__ import annotations

from pathlib import Path

from rollguard.audit.base import AuditSink
from rollguard.audit.factory import open_policy_store
from rollguard.baseline import Baseline, load_baseline
from rollguard.controller.clock import Clock, SimulatedClock, SystemClock
from rollguard.controller.watch import EvaluationHook, Watcher
from rollguard.executors.factory import make_executor
from rollguard.metrics.base import Provider
from rollguard.metrics.factory import make_provider
from rollguard.metrics.replay import ReplayProvider
from rollguard.notifiers.base import Notifier
from rollguard.notifiers.factory import make_notifier
from rollguard.policy.model import Policy
from rollguard.security.provider import SecurityProvider


def policy_baseline(
    policy: Policy, *, base_dir: Path, override: Path | None = None
) -> Baseline | None:
    """The baseline a policy names (relative to the policy's folder), or ``override``."""
    path = override or (Path(policy.baseline.file) if policy.baseline.file else None)
    if path is None:
        return None
    if not path.is_absolute() and override is None:
        path = base_dir / path
    return load_baseline(path)


def build_watcher(
    policy: Policy,
    *,
    base_dir: Path,
    clock: Clock | None = None,
    audit: AuditSink | None = None,
    notifier: Notifier | None = None,
    baseline_file: Path | None = None,
    interval_seconds: float | None = None,
    on_evaluation: EvaluationHook | None = None,
) -> Watcher:
    """A watcher wired to the backends the policy names.

    When ``runtime_security`` names an access log or a Falco listener, those
    answer the runtime-security signals. A replay provider gets a simulated
    clock starting at the recording's first row, so watching a recording
    replays it at once instead of in real time.
    """
    provider: Provider = make_provider(policy, base_dir=base_dir)
    if clock is None:
        clock = (
            SimulatedClock(provider.start)
            if isinstance(provider, ReplayProvider)
            else SystemClock()
        )
    security = policy.runtime_security
    if security is not None and (security.access_log or security.falco_listen):
        # The access log and Falco answer the runtime-security signals; the rest
        # still comes from the policy's metrics provider.
        provider = SecurityProvider.from_policy(
            security, provider, base_dir=base_dir, clock=clock.now
        )
    return Watcher(
        policy,
        provider=provider,
        executor=make_executor(policy),
        notifier=notifier or make_notifier(policy),
        audit=audit or open_policy_store(policy.audit, base_dir=base_dir),
        clock=clock,
        baseline=policy_baseline(policy, base_dir=base_dir, override=baseline_file),
        interval_seconds=interval_seconds,
        on_evaluation=on_evaluation,
    )
