"""The engine's memory between evaluations: small, immutable, serializable.

The controller keeps the latest :class:`EngineState` and persists it, so a
restarted watcher resumes its persistence and no-data counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class TriggerState:
    """Counters for one trigger."""

    breaches: int = 0  # consecutive evaluations over the threshold
    breach_since: float | None = None  # when the current streak started
    no_data: int = 0  # consecutive evaluations without a usable measurement
    judged: int = 0  # evaluations with a usable measurement, ever
    sequential: Mapping[str, float] = field(default_factory=dict)  # detector state


@dataclass(frozen=True, slots=True)
class EngineState:
    """Per-trigger counters, keyed by trigger name."""

    triggers: Mapping[str, TriggerState] = field(default_factory=dict)
    evaluations: int = 0

    def of(self, name: str) -> TriggerState:
        """The trigger's state, fresh when it was never evaluated."""
        return self.triggers.get(name, TriggerState())

    def with_triggers(self, updates: Mapping[str, TriggerState]) -> EngineState:
        """A new state with ``updates`` applied and one more evaluation counted."""
        return replace(
            self, triggers={**self.triggers, **updates}, evaluations=self.evaluations + 1
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineState:
        """Rebuild a persisted state."""
        triggers = {
            name: TriggerState(**values) for name, values in dict(data.get("triggers", {})).items()
        }
        return cls(triggers=triggers, evaluations=int(data.get("evaluations", 0)))
