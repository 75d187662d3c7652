"""Any apprise URL as a channel: Slack, Microsoft Teams, PagerDuty, e-mail, ntfy, ...

apprise is synchronous, so each attempt runs in a worker thread. apprise's
own log lines can carry URLs; the factory installs a redacting filter on the
``apprise`` logger, and this channel reports only its name and a short reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import warnings
from typing import Any

from rollguard.notifiers.base import Notification
from rollguard.notifiers.webhook import ChannelError

_SEVERITY_TYPE = {"critical": "failure", "warning": "warning", "info": "info"}


class AppriseChannel:
    """Sends through one apprise URL; ``apprise_module`` is injectable for tests."""

    def __init__(self, name: str, *, url: str, apprise_module: Any = None) -> None:
        if apprise_module is None:
            apprise_module = _import_apprise()
        self.name = name
        self._apprise = apprise_module
        self._url = url

    def check(self) -> None:
        """Raise :class:`ChannelError` when apprise does not understand the URL."""
        instance = self._apprise.Apprise()
        if not instance.add(self._url):
            raise ChannelError("apprise does not recognise this channel's URL", retry=False)

    async def send(self, notification: Notification, *, delivery_id: str) -> str:
        """One attempt in a worker thread; raises :class:`ChannelError` on failure."""
        ok = await asyncio.to_thread(self._send_sync, notification)
        if not ok:
            raise ChannelError("apprise reported the delivery as failed", retry=True)
        return "sent"

    def _send_sync(self, notification: Notification) -> bool:
        instance = self._apprise.Apprise()
        if not instance.add(self._url):
            raise ChannelError("apprise does not recognise this channel's URL", retry=False)
        body = notification.text
        if notification.fields:
            details = ", ".join(f"{k}={v}" for k, v in notification.fields.items())
            body = f"{body}\n{details}"
        notify_type = _SEVERITY_TYPE.get(notification.severity, "info")
        return bool(instance.notify(title=notification.title, body=body, notify_type=notify_type))


def _import_apprise() -> Any:
    """apprise imports the deprecated ``imghdr`` (lazily, with its e-mail plugin); that
    warning is apprise's, not the user's, so load that module here with it silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        with contextlib.suppress(ImportError):
            importlib.import_module("apprise.utils.pgp")
    return apprise
