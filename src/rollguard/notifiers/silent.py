"""A notifier that tells nobody: drills and backtests rehearse, they are not incidents."""

from __future__ import annotations

from rollguard.notifiers.base import Delivery, Notification


class SilentNotifier:
    """Delivers nothing and says so with no deliveries (nothing failed, nobody was paged)."""

    async def notify(self, notification: Notification) -> list[Delivery]:
        return []
