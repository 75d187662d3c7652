"""Every secret a policy makes rollguard hold, and the redaction of their values.

A policy names secrets in two ways: environment variables (``audit.key_env``,
``audit.url_env``, every ``metrics`` ``*_env`` field, each channel's ``url_env`` and
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


#: The AWS SDK's secret variables, held when the CloudWatch source reads them.
AWS_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def _env_fields(model: object, path: str) -> list[tuple[str | None, str]]:
    """Every ``*_env`` value under ``model`` (a map of them, such as ``headers_env``, too)."""
    found: list[tuple[str | None, str]] = []
    for name in getattr(type(model), "model_fields", {}):
        value = getattr(model, name)
        where = f"{path}.{name}"
        if name.endswith("_env") and isinstance(value, str):
            found.append((value, where))
        elif name.endswith("_env") and isinstance(value, dict):
            found += [(variable, f"{where}.{key}") for key, variable in value.items()]
        elif hasattr(type(value), "model_fields"):
            found += _env_fields(value, where)
    return found


def secret_env_names(policy: Policy) -> dict[str, str]:
    """Each environment variable the policy reads a secret from, with the field naming it."""
    found: dict[str, str] = dict.fromkeys(ALWAYS_SECRET_ENV, "rollguard's API token")
    fields: list[tuple[str | None, str]] = [
        (policy.audit.key_env, "audit.key_env"),
        (policy.audit.url_env, "audit.url_env"),
    ]
    fields += _env_fields(policy.metrics, "metrics")
    if policy.metrics.provider == "cloudwatch":  # boto3 reads these itself
        fields += [(name, "metrics (AWS credentials)") for name in AWS_SECRET_ENV]
    for name, channel in policy.notifications.channels.items():
        for attribute in ("url_env", "secret_env"):
            fields.append(
                (getattr(channel, attribute, None), f"notifications.channels.{name}.{attribute}")
            )
    security = policy.runtime_security
    if security is not None:
        fields.append((security.falco_secret_env, "runtime_security.falco_secret_env"))
    if policy.promotion is not None:
        hooks = policy.promotion.hooks
        for hook_name in type(hooks).model_fields:
            hook = getattr(hooks, hook_name)
            if hook is not None:
                fields.append((hook.secret_env, f"promotion.hooks.{hook_name}.secret_env"))
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
