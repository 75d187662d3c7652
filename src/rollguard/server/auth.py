"""The bearer token that guards the control endpoints (abort, pause, resume, promote).

The token comes from a file (``--token-file``, first line) or from the
environment (``ROLLGUARD_API_TOKEN``); it is never logged or echoed. The
comparison is constant-time (``hmac.compare_digest``) so response timing does
not reveal how much of a guess was right.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from rollguard.errors import UsageError

TOKEN_ENV = "ROLLGUARD_API_TOKEN"  # noqa: S105 the variable's name, not a token
MIN_TOKEN_LENGTH = 16


class TokenAuth:
    """Checks ``Authorization: Bearer <token>`` headers against the configured token."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def configured(self) -> bool:
        """False when no token was given: every control request is then refused."""
        return self._token is not None

    def allows(self, authorization: str | None) -> bool:
        """True only for ``Bearer <the token>``."""
        if self._token is None or not authorization:
            return False
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), self._token)

    @classmethod
    def load(cls, token_file: Path | None, *, environ: dict[str, str] | None = None) -> TokenAuth:
        """From the file when given, else from ``ROLLGUARD_API_TOKEN``; none is allowed."""
        env = os.environ if environ is None else environ
        if token_file is not None:
            try:
                text = token_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(
                    f"{token_file}: cannot read the API token: {exc.strerror}"
                ) from exc
            lines = text.strip().splitlines()
            token = lines[0].strip() if lines else ""
            source = str(token_file)
        else:
            token = env.get(TOKEN_ENV, "").strip()
            source = TOKEN_ENV
            if not token:
                return cls(None)
        if len(token) < MIN_TOKEN_LENGTH:
            raise UsageError(
                f"{source}: the API token must be at least {MIN_TOKEN_LENGTH} characters "
                "(e.g. `openssl rand -hex 32`)"
            )
        return cls(token)
