"""Routes a notification by its seed name to channels, with retries, never raising.

Each channel of the route is tried concurrently; a failed attempt that may
succeed later (timeout, HTTP 5xx or 429, apprise failure) is retried with
exponential backoff. Whatever happens, :meth:`Router.notify` returns one
:class:`Delivery` per channel — a failed one carries a scrubbed reason and is
recorded by the controller — and never raises.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from rollguard.notifiers.base import Delivery, Notification
from rollguard.notifiers.secrets import Redactor
from rollguard.notifiers.webhook import ChannelError

logger = logging.getLogger("rollguard.notify")

#: The seed's notification names.
ROUTES = (
    "critical_alert",
    "warning_alert",
    "resource_alert",
    "security_alert",
    "security_incident",
)


class Channel(Protocol):
    """One destination; ``send`` makes one attempt and raises ChannelError on failure."""

    name: str

    async def send(self, notification: Notification, *, delivery_id: str) -> str: ...


class LogChannel:
    """Writes the notification to rollguard's log: the fallback when a route has no channels."""

    def __init__(self, name: str = "log") -> None:
        self.name = name

    async def send(self, notification: Notification, *, delivery_id: str = "") -> str:
        logger.warning("[%s] %s: %s", notification.route, notification.title, notification.text)
        return "logged"


class Router:
    """A :class:`~rollguard.notifiers.base.Notifier` over named channels and routes."""

    def __init__(
        self,
        channels: Mapping[str, Channel],
        routes: Mapping[str, Sequence[str]],
        *,
        retries: int = 2,
        backoff_seconds: float = 0.5,
        redactor: Redactor | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._channels = dict(channels)
        self._routes = {route: list(names) for route, names in routes.items()}
        self._retries = retries
        self._backoff = backoff_seconds
        self._redactor = redactor or Redactor()
        self._sleep = sleep
        self._fallback = LogChannel()

    async def notify(self, notification: Notification) -> list[Delivery]:
        names = self._routes.get(notification.route) or self._routes.get("default") or []
        if not names:
            await self._fallback.send(notification)
            detail = f"no channels for route {notification.route}; written to the log only"
            return [Delivery(channel="log", ok=True, detail=detail)]
        return list(await asyncio.gather(*(self._deliver(name, notification) for name in names)))

    async def _deliver(self, name: str, notification: Notification) -> Delivery:
        channel = self._channels[name]
        delivery_id = uuid.uuid4().hex
        reason = "not attempted"
        attempts = 0
        for attempt in range(self._retries + 1):
            attempts = attempt + 1
            try:
                detail = await channel.send(notification, delivery_id=delivery_id)
            except ChannelError as exc:
                reason, retry = str(exc), exc.retry
            except Exception as exc:  # a channel bug must not stop the others
                reason, retry = f"unexpected {type(exc).__name__}", False
            else:
                return Delivery(channel=name, ok=True, detail=self._redactor.scrub(detail))
            if not retry or attempt == self._retries:
                break
            await self._sleep(self._backoff * 2**attempt)
        reason = self._redactor.scrub(reason)
        logger.warning(
            "notification %s to channel %s failed after %d attempt(s): %s",
            notification.route,
            name,
            attempts,
            reason,
        )
        return Delivery(channel=name, ok=False, detail=f"{reason} (after {attempts} attempts)")
