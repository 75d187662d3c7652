"""A metrics Provider that answers the runtime-security signals and delegates the rest.

Wrap the policy's provider once, and the watch loop sees one provider::

    inner = make_provider(policy, base_dir=base_dir)
    provider = SecurityProvider.from_policy(policy.runtime_security, inner, base_dir=base_dir)
    ...
    await provider.aclose()   # stops the Falco receiver, closes the inner provider

It answers, for the canary (the access log and Falco describe what the canary
serves; stable queries go to the inner provider):

- ``UNAUTHORIZED_PER_MINUTE``: 401 and 403 responses read from the access log
  in the window, divided by the window's minutes (from the access log when one
  is configured; otherwise the inner provider answers from its metrics);
- ``SUSPICIOUS_EVENTS``: requests that matched a signature plus Falco alerts
  at or above ``falco_min_priority``, counted in the window.

Errors are data: a missing access log, or one whose every new line is in
another format, yields an ERROR measurement with the reason, never a zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from rollguard.policy.triggers import RuntimeSecuritySpec
from rollguard.security.events import EventLog, SecurityEvent
from rollguard.security.falco import FalcoIntake, FalcoReceiver, falco_secret
from rollguard.security.tailer import AccessLogTailer
from rollguard.signals import Measurement, Query, Signal, Version

OWN_SIGNALS = frozenset({Signal.UNAUTHORIZED_PER_MINUTE, Signal.SUSPICIOUS_EVENTS})


class MeasureSource(Protocol):
    """The metrics Provider protocol, restated (security may not import metrics)."""

    async def collect(self, *, now: float) -> None: ...

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]: ...

    async def aclose(self) -> None: ...


class SecurityProvider:
    """Answers the security signals from an access log and Falco; delegates other queries."""

    def __init__(
        self,
        inner: MeasureSource | None,
        *,
        events: EventLog,
        tailer: AccessLogTailer | None = None,
        falco: FalcoReceiver | None = None,
        version: Version = Version.CANARY,
    ) -> None:
        self.inner = inner
        self.events = events
        self.tailer = tailer
        self.falco = falco
        self.version = version
        self._read_this_poll = 0
        self._bad_this_poll = 0

    @classmethod
    def from_policy(
        cls,
        spec: RuntimeSecuritySpec | None,
        inner: MeasureSource | None,
        *,
        base_dir: Path,
        start_receiver: bool = True,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> SecurityProvider:
        """The wrapper a policy's ``runtime_security`` section asks for.

        ``clock`` stamps Falco alerts as they arrive; pass the controller's clock.
        The Falco secret is read from ``environ`` (the process environment by default).
        """
        events = EventLog()
        tailer = falco = None
        if spec is not None and spec.access_log:
            path = Path(spec.access_log)
            tailer = AccessLogTailer(
                path if path.is_absolute() else base_dir / path,
                fmt=spec.access_log_format,
                events=events,
            )
        if spec is not None and spec.falco_listen:
            host, _, port = spec.falco_listen.rpartition(":")
            intake = FalcoIntake(events, min_priority=spec.falco_min_priority)
            falco = FalcoReceiver(
                intake,
                secret=falco_secret(spec.falco_secret_env, environ=environ),
                host=host,
                port=int(port),
                clock=clock,
            )
            if start_receiver:
                falco.start()
        return cls(inner, events=events, tailer=tailer, falco=falco)

    def recent_events(self, *, start: float, end: float) -> list[SecurityEvent]:
        """The suspicious requests and alerts behind a SUSPICIOUS_EVENTS value (for evidence)."""
        return self.events.events(start=start, end=end)

    async def collect(self, *, now: float) -> None:
        """Read the access log's new lines, then let the inner provider refresh."""
        if self.tailer is not None:
            problems_before = self.tailer.problems
            self._read_this_poll = self.tailer.poll(now=now)
            self._bad_this_poll = self.tailer.problems - problems_before
        if self.inner is not None:
            await self.inner.collect(now=now)

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        """Own signals answered here, the others by the inner provider, in the asked order."""
        own = [query for query in queries if self._answers(query)]
        others = [query for query in queries if not self._answers(query)]
        delegated: list[Measurement] = []
        if others and self.inner is not None:
            delegated = await self.inner.measure(others, now=now)
        elif others:
            delegated = [
                Measurement.no_data(q, now, "no metrics provider for this signal") for q in others
            ]
        answers = {id(query): self._measure_own(query, now) for query in own}
        delegated_iter = iter(delegated)
        return [
            answers[id(query)] if id(query) in answers else next(delegated_iter)
            for query in queries
        ]

    async def aclose(self) -> None:
        """Stop the Falco receiver and close the inner provider."""
        if self.falco is not None:
            self.falco.stop()
        if self.inner is not None:
            await self.inner.aclose()

    def _answers(self, query: Query) -> bool:
        if query.signal not in OWN_SIGNALS or query.version is not self.version:
            return False
        if query.signal is Signal.UNAUTHORIZED_PER_MINUTE:
            return self.tailer is not None
        return self.tailer is not None or self.falco is not None

    def _measure_own(self, query: Query, now: float) -> Measurement:
        start = now - query.window_seconds
        if self.tailer is not None:
            broken = self._log_problem()
            if broken is not None:
                return Measurement.error(query, now, broken)
        if query.signal is Signal.UNAUTHORIZED_PER_MINUTE:
            requests, unauthorized = self.events.tallies(start=start, end=now)
            per_minute = unauthorized / (query.window_seconds / 60.0)
            return Measurement.ok(query, now, per_minute, requests=requests)
        count = len(self.events.events(start=start, end=now))
        requests, _ = self.events.tallies(start=start, end=now)
        return Measurement.ok(query, now, float(count), requests=requests if self.tailer else None)

    def _log_problem(self) -> str | None:
        assert self.tailer is not None  # noqa: S101 only called when a log is tailed
        if self.tailer.missing:
            return f"access log {self.tailer.path} does not exist"
        if self.tailer.unreadable is not None:
            return self.tailer.unreadable
        bad = self._bad_this_poll
        if bad and not self._read_this_poll:
            return f"{bad} new access-log line(s) not understood; last: {self.tailer.last_problem}"
        return None
