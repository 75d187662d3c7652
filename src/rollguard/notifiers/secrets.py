"""Keeping channel secrets out of output and logs.

Channel URLs and signing keys come from the policy or from environment
variables (``url_env``, ``secret_env``). Every string a channel reports is
passed through :meth:`Redactor.scrub`, and :class:`RedactingFilter` scrubs
the log records of the libraries that see the URLs (apprise, httpx).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from rollguard.errors import UsageError

MASK = "***"
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


class Redactor:
    """Replaces every known secret, and anything that looks like a URL, with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Register more secrets (short strings are skipped: they would mask ordinary words)."""
        self._secrets.update(secret for secret in secrets if len(secret) >= 6)

    def scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return _URL.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs a record's final message in place."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self._redactor.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


def install_log_redaction(redactor: Redactor, loggers: Iterable[str]) -> None:
    """Attach one redacting filter to each named logger (idempotent per redactor)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(getattr(f, "_redactor", None) is redactor for f in logger.filters):
            logger.addFilter(RedactingFilter(redactor))


def resolve(value: str | None, env_name: str | None, env: dict[str, str], *, what: str) -> str:
    """The literal value, or the named environment variable's; UsageError when neither is set."""
    if env_name is not None:
        found = env.get(env_name)
        if not found:
            raise UsageError(f"{what}: environment variable {env_name} is not set")
        return found
    if value:
        return value
    raise UsageError(f"{what}: set url or url_env")
