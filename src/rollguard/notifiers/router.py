"""Routes a notification by its alert name to channels, with retries, never raising.

Each channel of the route is tried concurrently; a failed attempt that may
succeed later (timeout, HTTP 5xx or 429, apprise failure) is retried through
:mod:`rollguard.retry` (exponential backoff, or the receiver's ``Retry-After``).
Whatever happens, :meth:`Router.notify` returns one :class:`Delivery` per
channel — a failed one carries a scrubbed reason and is recorded by the
controller — and never raises.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

from rollguard.notifiers.base import Delivery, Notification
from rollguard.notifiers.secrets import Redactor
from rollguard.notifiers.webhook import ChannelError
from rollguard.retry import SETTINGS, Sleep, call_with_retries

logger = logging.getLogger("rollguard.notify")


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
        retries: int | None = None,
        backoff_seconds: float | None = None,
        redactor: Redactor | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._channels = dict(channels)
        self._routes = {route: list(names) for route, names in routes.items()}
        defaults = SETTINGS["notifications"]
        self._retry = defaults.with_retries(
            defaults.retries if retries is None else retries, backoff_seconds=backoff_seconds
        )
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
        attempts = [0]

        def count(number: int) -> None:
            attempts[0] = number

        try:
            detail = await call_with_retries(
                lambda: channel.send(notification, delivery_id=delivery_id),
                settings=self._retry,
                retry_on=lambda exc: isinstance(exc, ChannelError) and exc.retry,
                sleep=self._sleep,
                on_attempt=count,
            )
        except ChannelError as exc:
            reason = str(exc)
        except Exception as exc:  # a channel bug must not stop the others
            reason = f"unexpected {type(exc).__name__}"
        else:
            return Delivery(channel=name, ok=True, detail=self._redactor.scrub(detail))
        reason = self._redactor.scrub(reason)
        logger.warning(
            "notification %s to channel %s failed after %d attempt(s): %s",
            notification.route,
            name,
            attempts[0],
            reason,
        )
        return Delivery(channel=name, ok=False, detail=f"{reason} (after {attempts[0]} attempts)")
