"""The notifier interface: tell people, never hold up a rollback.

The controller hands every notification to a :class:`Notifier` without waiting
on slow channels; a channel that fails returns a failed :class:`Delivery`,
which the controller records. Secrets (webhook URLs, tokens) never appear in a
``Delivery`` or a log line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Notification:
    """One message, routed by alert name (``critical_alert``, ...)."""

    route: str
    deployment: str
    title: str
    text: str
    severity: str
    fields: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """Whether one channel took the message; ``channel`` is its name, never its URL."""

    channel: str
    ok: bool
    detail: str = ""


class Notifier(Protocol):
    """Sends notifications to the channels of their route."""

    async def notify(self, notification: Notification) -> list[Delivery]:
        """Deliver to every channel of the route; never raises for a failing channel."""


async def notify_within(
    notifier: Notifier, notification: Notification, *, seconds: float
) -> list[Delivery]:
    """Deliver with a deadline; a timeout or a raising notifier is a failed delivery.

    Only the exception's type is kept: a channel's message may carry its URL or token.
    """
    try:
        return await asyncio.wait_for(notifier.notify(notification), seconds)
    except TimeoutError:
        return [Delivery(channel=notification.route, ok=False, detail="timed out")]
    except Exception as exc:  # a broken notifier must never stop a rollback
        detail = f"the notifier raised {type(exc).__name__}"
        return [Delivery(channel=notification.route, ok=False, detail=detail)]
