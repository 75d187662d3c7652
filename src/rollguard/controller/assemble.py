"""One assembly of the watch loop, for every command that watches.

``watch``, ``serve``, ``drill``, ``backtest`` and the demo all build their
:class:`~rollguard.controller.watch.Watcher` here, from the policy and the few
things each command supplies instead (:class:`Overrides`). Whatever the
policy asks for beyond that (the runtime-security sources, the replay clock,
the baseline) is built the same way for all of them, so no command watches
with less than the policy says: two assemblies drift apart (``serve`` once
lost runtime security that way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from rollguard.audit.base import AuditSink
from rollguard.baseline import Baseline, load_baseline
from rollguard.controller.clock import Clock, SimulatedClock, SystemClock
from rollguard.controller.recovery import LockLease
from rollguard.controller.watch import EvaluationHook, Watcher
from rollguard.engine import promotion, sequential_rules
from rollguard.executors.base import Executor
from rollguard.metrics.base import Provider
from rollguard.metrics.pacing import ReplayPacer
from rollguard.metrics.replay import ReplayProvider
from rollguard.notifiers.base import Notifier
from rollguard.policy.model import Policy
from rollguard.security.provider import SecurityProvider
from rollguard.signals import Version


class _FromPolicy(Enum):
    BASELINE = "the policy's baseline"


#: Load the baseline the policy names (or ``Overrides.baseline_file``).
FROM_POLICY = _FromPolicy.BASELINE


@dataclass(frozen=True)
class Overrides:
    """What a command supplies instead of the policy's own backends; ``None``: the policy's.

    ``metrics`` replaces the policy's metrics source (a backtest's recording);
    the runtime-security sources still answer their signals on top of it.
    ``signals`` answers every signal (a drill's synthetic feed): neither the
    policy's metrics source nor its runtime-security sources are built.
    ``replay_speed`` plays a replay source on the wall clock at that pace
    (``serve``); without it a replay runs on a simulated clock at once.
    ``instrument`` wraps the finished provider (``serve`` times evaluations).
    ``align_ticks`` evaluates on multiples of the interval, so that many watchers
    in one process ask together and their queries are batched.
    """

    base_dir: Path
    metrics: Provider | None = None
    signals: Provider | None = None
    executor: Executor | None = None
    notifier: Notifier | None = None
    audit: AuditSink | None = None
    clock: Clock | None = None
    baseline: Baseline | _FromPolicy | None = FROM_POLICY
    baseline_file: Path | None = None
    replay_speed: float | None = None
    interval_seconds: float | None = None
    on_evaluation: EvaluationHook | None = None
    instrument: Callable[[Provider], Provider] | None = None
    judge_to_end: bool = False
    align_ticks: bool = False
    #: The deployment's namespace when the policy does not say (``rollguard controller``).
    namespace: str | None = None
    #: How the deployment's lock is kept (``rollguard controller``: as the shard Lease).
    lock_lease: LockLease | None = None
    #: The canary is past its warm-up (``rollguard controller`` taking over a watch).
    warmed_up: bool = False


def assemble(policy: Policy, overrides: Overrides) -> Watcher:
    """The watcher for ``policy``: the policy's backends, except where ``overrides`` says.

    Raises :class:`~rollguard.errors.RollguardError` subclasses for a backend
    that cannot be built (a replay file that does not parse, a baseline that
    does not load, an executor that is not available).
    """
    base_dir = overrides.base_dir
    baseline = overrides.baseline
    if isinstance(baseline, _FromPolicy):
        baseline = policy_baseline(policy, base_dir=base_dir, override=overrides.baseline_file)
    # The provider comes last: it may start a Falco receiver, which nothing could stop
    # if a later part failed to build.
    audit = overrides.audit or _audit(policy, base_dir)
    notifier = overrides.notifier or _notifier(policy)
    executor = overrides.executor or _executor(policy)
    metrics = overrides.signals or overrides.metrics or _metrics(policy, base_dir)
    # A recording knows the signals it lacks: say before the start which sequential
    # triggers their threshold rule will judge (the evidence says it at each evaluation).
    knows = metrics.cannot_answer if isinstance(metrics, ReplayProvider) else None
    fallbacks = sequential_rules.fallbacks(policy, baseline=baseline, cannot_answer=knows)
    interval = overrides.interval_seconds
    if interval is None and isinstance(metrics, ReplayProvider) and overrides.replay_speed:
        interval = paced_interval(policy, metrics, overrides.replay_speed)
    provider, clock = _signals(policy, metrics, overrides)
    if overrides.instrument is not None:
        provider = overrides.instrument(provider)
    return Watcher(
        policy,
        provider=provider,
        executor=executor,
        notifier=notifier,
        audit=audit,
        clock=clock,
        baseline=baseline,
        interval_seconds=interval,
        on_evaluation=overrides.on_evaluation,
        judge_to_end=overrides.judge_to_end,
        fallbacks=fallbacks,
        align_ticks=overrides.align_ticks,
        namespace=overrides.namespace,
        lock_lease=overrides.lock_lease,
        warmed_up=overrides.warmed_up,
    )


def paced_interval(policy: Policy, provider: ReplayProvider, speed: float) -> float | None:
    """How often to evaluate a recording played ``speed`` times real time, when the
    policy's interval is too short for it (None: the policy's own).

    Each interval moves ``speed`` intervals through the recording; shorter than the
    rows' spacing, most intervals would bring no new row and starve the sequential
    tests (as :func:`~rollguard.controller.backtest.interval_for`). The policy itself
    is left as written: its digest is the one the audit trail records.
    """
    steps = [provider.recording.step(v) for v in Version]
    step = max((s for s in steps if s is not None), default=0.0)
    return step / speed if policy.analysis.interval * speed < step else None


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


def foreseen_fallbacks(policy: Policy, *, base_dir: Path) -> dict[str, str]:
    """The fallbacks :func:`assemble` would find, building nothing live (``policy explain``).

    A replay file or baseline that does not load is left to the commands that
    need them; here it only means nothing can be said about what it lacks.
    """
    from rollguard.errors import RollguardError
    from rollguard.policy.model import ReplaySource

    try:
        baseline = policy_baseline(policy, base_dir=base_dir)
    except RollguardError:
        baseline = None
    knows = None
    if isinstance(policy.metrics, ReplaySource):
        try:
            knows = _metrics(policy, base_dir)
        except RollguardError:
            knows = None
    cannot_answer = knows.cannot_answer if isinstance(knows, ReplayProvider) else None
    return sequential_rules.fallbacks(policy, baseline=baseline, cannot_answer=cannot_answer)


def _signals(policy: Policy, metrics: Provider, overrides: Overrides) -> tuple[Provider, Clock]:
    """The provider every query goes to, and the clock the watch runs on.

    A replay gets a simulated clock starting at the recording's first row, so
    watching a recording replays it at once, unless it is paced on the wall
    clock. When ``runtime_security`` names an access log or a Falco listener,
    those answer the runtime-security signals; the rest still comes from the
    metrics source.
    """
    if overrides.signals is not None:
        return metrics, overrides.clock or SystemClock()
    clock = overrides.clock
    if isinstance(metrics, ReplayProvider):
        if overrides.replay_speed is not None:
            increments = [*sequential_rules.queries(policy), *promotion.queries(policy)]
            metrics = ReplayPacer(
                metrics, start=metrics.start, speed=overrides.replay_speed, increments=increments
            )
        elif clock is None:
            clock = SimulatedClock(metrics.start)
    clock = clock or SystemClock()
    security = policy.runtime_security
    if security is None or not (security.access_log or security.falco_listen):
        return metrics, clock
    wrapped = SecurityProvider.from_policy(
        security, metrics, base_dir=overrides.base_dir, clock=clock.now
    )
    return wrapped, clock


def _metrics(policy: Policy, base_dir: Path) -> Provider:
    from rollguard.metrics.factory import make_provider

    return make_provider(policy, base_dir=base_dir)


def _executor(policy: Policy) -> Executor:
    from rollguard.executors.factory import make_executor

    return make_executor(policy)


def _notifier(policy: Policy) -> Notifier:
    from rollguard.notifiers.factory import make_notifier

    return make_notifier(policy)


def _audit(policy: Policy, base_dir: Path) -> AuditSink:
    from rollguard.audit.factory import open_policy_store

    return open_policy_store(policy.audit, base_dir=base_dir)
