"""Notifier tests talk to a real HTTP receiver on loopback."""

from __future__ import annotations

from servers.receiver import receiver

__all__ = ["receiver"]
