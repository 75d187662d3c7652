"""``make_notifier(policy)``: channels and routes from the policy's ``notifications``.

Secrets are read from the environment here, once, and registered with a
redactor that scrubs every channel's reported detail and the log lines of
apprise and httpx. A variable named by ``url_env``/``secret_env`` that is not
set is a :class:`~rollguard.errors.UsageError` at start, not a silent failure
in the middle of an incident.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from rollguard.errors import UsageError
from rollguard.notifiers import secrets
from rollguard.notifiers.apprise_channel import AppriseChannel
from rollguard.notifiers.base import Notifier
from rollguard.notifiers.log import LogNotifier
from rollguard.notifiers.router import Channel, LogChannel, Router
from rollguard.notifiers.webhook import ChannelError, WebhookChannel
from rollguard.policy import model
from rollguard.policy.model import Policy

_REDACTED_LOGGERS = ("apprise", "httpx", "httpcore", "rollguard.notify")


def make_notifier(
    policy: Policy,
    *,
    env: Mapping[str, str] | None = None,
    http_client: httpx.AsyncClient | None = None,
    apprise_module: Any = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Notifier:
    """The notifier the policy describes; a plain log notifier when it names no channels."""
    config = policy.notifications
    if not config.channels:
        return LogNotifier()
    environment = dict(os.environ if env is None else env)
    redactor = secrets.Redactor()
    # Before any channel is built: apprise logs a URL it cannot load (token included).
    secrets.install_log_redaction(redactor, _REDACTED_LOGGERS)
    channels: dict[str, Channel] = {}
    for name, spec in config.channels.items():
        channels[name] = _channel(
            name,
            spec,
            environment,
            redactor,
            http_client=http_client,
            apprise=apprise_module,
        )
    options: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    return Router(
        channels,
        config.routes,
        retries=config.retries,
        backoff_seconds=config.retry_backoff,
        redactor=redactor,
        **options,
    )


def _channel(
    name: str,
    spec: model.Channel,
    env: dict[str, str],
    redactor: secrets.Redactor,
    *,
    http_client: httpx.AsyncClient | None,
    apprise: Any,
) -> Channel:
    where = f"notifications.channels.{name}"
    if isinstance(spec, model.LogChannel):
        return LogChannel(name)
    url = secrets.resolve(spec.url, spec.url_env, env, what=where)
    redactor.add(url, *_url_parts(url))
    if isinstance(spec, model.WebhookChannel):
        secret = None
        if spec.secret_env is not None:
            secret = secrets.resolve(None, spec.secret_env, env, what=f"{where}.secret_env")
            redactor.add(secret)
        return WebhookChannel(
            name, url=url, secret=secret, timeout_seconds=spec.timeout, client=http_client
        )
    channel = AppriseChannel(name, url=url, apprise_module=apprise)
    try:
        channel.check()
    except ChannelError as exc:
        raise UsageError(f"{where}: {exc} (see the apprise wiki for URL forms)") from None
    return channel


def _url_parts(url: str) -> list[str]:
    """Tokens inside a URL (user, password, path segments) that a library might log alone."""
    return [part for part in re.split(r"[/:@?&=#]+", url) if len(part) >= 8 and "." not in part]
