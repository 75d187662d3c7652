"""The controller: the watch loop moving data from metrics through the engine to actions."""

from rollguard.controller.clock import Clock, SimulatedClock, SystemClock
from rollguard.controller.watch import Outcome, Watcher, WatchResult

__all__ = ["Clock", "Outcome", "SimulatedClock", "SystemClock", "WatchResult", "Watcher"]
