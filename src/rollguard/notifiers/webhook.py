"""A generic JSON webhook, signed with HMAC-SHA256 (docs/notifications.md).

The receiver checks ``X-Rollguard-Signature: sha256=<hex>`` where the hex is
HMAC-SHA256(secret, ``<X-Rollguard-Timestamp>.<raw body>``), and rejects
timestamps older than a few minutes to stop replays. ``X-Rollguard-Delivery``
is the same for every retry of one notification, so receivers can de-duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx

from rollguard.notifiers.base import Notification
from rollguard.retry import retry_after_seconds
from rollguard.timestamps import now_rfc3339

SIGNATURE_HEADER = "X-Rollguard-Signature"
TIMESTAMP_HEADER = "X-Rollguard-Timestamp"
DELIVERY_HEADER = "X-Rollguard-Delivery"


class ChannelError(Exception):
    """One attempt failed; ``retry`` says whether trying again may help. Never holds secrets.

    ``retry_after_seconds`` is the wait the receiver asked for (``Retry-After``), if any.
    """

    def __init__(
        self, message: str, *, retry: bool, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after_seconds = retry_after_seconds


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def payload(notification: Notification, *, delivery_id: str) -> dict[str, object]:
    """The JSON body every webhook receives."""
    return {
        "version": 1,
        "id": delivery_id,
        "route": notification.route,
        "deployment": notification.deployment,
        "title": notification.title,
        "text": notification.text,
        "severity": notification.severity,
        "fields": {str(k): v for k, v in notification.fields.items()},
        "sent_at": now_rfc3339("seconds"),
    }


class WebhookChannel:
    """POSTs the notification as JSON; signs it when a secret is configured."""

    def __init__(
        self,
        name: str,
        *,
        url: str,
        secret: str | None,
        timeout_seconds: float,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret
        self._timeout = timeout_seconds
        self._client = client
        self._clock = clock

    async def send(self, notification: Notification, *, delivery_id: str) -> str:
        """One attempt; returns a short detail, raises :class:`ChannelError` on failure.

        ``delivery_id`` is the same for every retry of one notification.
        """
        body = json.dumps(payload(notification, delivery_id=delivery_id), default=str).encode()
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "rollguard",
            TIMESTAMP_HEADER: timestamp,
            DELIVERY_HEADER: delivery_id,
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        client = self._client or httpx.AsyncClient()
        try:
            response = await client.post(
                self._url, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException:
            raise ChannelError("timed out", retry=True) from None
        except httpx.HTTPError as exc:
            raise ChannelError(f"request failed ({type(exc).__name__})", retry=True) from None
        finally:
            if self._client is None:
                await client.aclose()
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise ChannelError(
                f"receiver answered HTTP {status}",
                retry=True,
                retry_after_seconds=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 400:
            raise ChannelError(f"receiver refused with HTTP {status}", retry=False)
        if status >= 300:
            # Redirects are not followed (the signed body would go where the policy did not
            # say): the message was not delivered, and retrying will not change that.
            raise ChannelError(f"receiver redirected with HTTP {status}", retry=False)
        return f"HTTP {status}"
