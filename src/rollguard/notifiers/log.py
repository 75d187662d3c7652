"""The default notifier: one log line per notification."""

from __future__ import annotations

import logging

from rollguard.notifiers.base import Delivery, Notification

logger = logging.getLogger("rollguard.notify")


class LogNotifier:
    """Writes notifications to the ``rollguard.notify`` logger and keeps them for tests."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def notify(self, notification: Notification) -> list[Delivery]:
        self.sent.append(notification)
        logger.warning("[%s] %s: %s", notification.route, notification.title, notification.text)
        return [Delivery(channel="log", ok=True)]
