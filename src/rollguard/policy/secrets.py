"""Every secret a policy makes rollguard hold, and the redaction of their values.

A policy names secrets in two ways: environment variables (``audit.key_env``,
``audit.url_env``, ``metrics.auth.*_env``, each channel's ``url_env`` and
``secret_env``) and URLs written inline (an apprise or webhook ``url`` carries
its token in the path; a database or Prometheus URL may carry a password).
Commands never inherit these variables (docs/command-executor.md), and
:class:`Redactor` replaces each known value wherever it turns up in what a
command printed, before that output is recorded, shown or exported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from rollguard.policy.model import Policy

#: Variables that hold a secret whatever the policy says (``serve``'s API token).
ALWAYS_SECRET_ENV = ("ROLLGUARD_API_TOKEN",)
#: Shorter values are not redacted: replacing every "abc" would garble output and hide
#: nothing (real tokens and keys are far longer; audit keys are at least 16 bytes).
MIN_SECRET_CHARS = 6
REDACTED = "[redacted]"


def secret_env_names(policy: Policy) -> dict[str, str]:
    """Each environment variable the policy reads a secret from, with the field naming it."""
    found: dict[str, str] = dict.fromkeys(ALWAYS_SECRET_ENV, "rollguard's API token")
    fields: list[tuple[str | None, str]] = [
        (policy.audit.key_env, "audit.key_env"),
        (policy.audit.url_env, "audit.url_env"),
    ]
    auth = getattr(policy.metrics, "auth", None)
    if auth is not None:
        fields += [
            (auth.bearer_token_env, "metrics.auth.bearer_token_env"),
            (auth.password_env, "metrics.auth.password_env"),
        ]
    for name, channel in policy.notifications.channels.items():
        for attribute in ("url_env", "secret_env"):
            fields.append(
                (getattr(channel, attribute, None), f"notifications.channels.{name}.{attribute}")
            )
    security = policy.runtime_security
    if security is not None:
        fields.append((security.falco_secret_env, "runtime_security.falco_secret_env"))
    for variable, field in fields:
        if variable:
            found[variable] = field
    return found


def inline_secrets(policy: Policy) -> list[str]:
    """Secrets written into the policy itself: channel URLs, passwords inside URLs."""
    values = []
    for channel in policy.notifications.channels.values():
        url = getattr(channel, "url", None)
        if url:
            values.append(url)
    for url in (policy.audit.url, str(getattr(policy.metrics, "address", "") or "")):
        password = urlsplit(url).password if "://" in url else None
        if password:
            values += [password, unquote(password)]
    return values


class Redactor:
    """Replaces every known secret value (longest first) by :data:`REDACTED`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {value for value in secrets if len(value) >= MIN_SECRET_CHARS}
        self._secrets = sorted(unique, key=len, reverse=True)

    @classmethod
    def for_policy(cls, policy: Policy, environ: Mapping[str, str]) -> Redactor:
        """The secrets ``policy`` holds: its variables' values in ``environ``, and inline ones."""
        values = [environ.get(name, "") for name in secret_env_names(policy)]
        return cls([*values, *inline_secrets(policy)])

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text
