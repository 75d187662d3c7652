"""Public fakes for tests of code built on rollguard: an in-memory provider
whose values a test sets, and an executor that records what it was asked."""

from __future__ import annotations

from collections.abc import Sequence

from rollguard.executors.base import ActionResult, TargetStatus
from rollguard.signals import Measurement, Query, Signal, Version


class InMemoryProvider:
    """Answers from a table of values by (signal, version); ``None`` means no data."""

    def __init__(self, values: dict[tuple[Signal, Version], float | None] | None = None) -> None:
        self.values: dict[tuple[Signal, Version], float | None] = dict(values or {})
        self.requests: float | None = 1_000.0
        self.collected = 0

    def set(self, signal: Signal, version: Version, value: float | None) -> None:
        """Change what the signal reads from now on, mid-watch (None: no data)."""
        self.values[(signal, version)] = value

    async def collect(self, *, now: float) -> None:
        self.collected += 1

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        out = []
        for query in queries:
            value = self.values.get((query.signal, query.version))
            if value is None:
                out.append(Measurement.no_data(query, now, "no value set"))
            else:
                out.append(Measurement.ok(query, now, value, requests=self.requests))
        return out

    async def aclose(self) -> None:
        return None


class RecordingExecutor:
    """Records every call and keeps a truthful status; can be told to fail."""

    def __init__(self, *, canary_weight: int = 20, fail: frozenset[str] = frozenset()) -> None:
        self.calls: list[tuple[str, object]] = []
        self.canary_weight = canary_weight
        self.canary_state = "serving"
        self.fail = fail

    def _result(self, name: str) -> ActionResult:
        if name in self.fail:
            return ActionResult(ok=False, detail=f"{name} refused (test)")
        return ActionResult(ok=True, detail=f"{name} done")

    async def rollback(self) -> ActionResult:
        self.calls.append(("rollback", None))
        result = self._result("rollback")
        if result.ok:
            self.canary_weight, self.canary_state = 0, "retired"
        return result

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        self.calls.append(("set_canary_weight", percent))
        result = self._result("set_canary_weight")
        if result.ok:
            self.canary_weight = percent
        return result

    async def scale(self, *, factor: float) -> ActionResult:
        self.calls.append(("scale", factor))
        return self._result("scale")

    async def isolate(self) -> ActionResult:
        self.calls.append(("isolate", None))
        result = self._result("isolate")
        if result.ok:
            self.canary_weight, self.canary_state = 0, "isolated"
        return result

    async def status(self) -> TargetStatus:
        return TargetStatus(canary_weight=self.canary_weight, canary_state=self.canary_state)

    async def aclose(self) -> None:
        return None
