"""The bearer tokens that guard the control endpoints (abort, pause, resume, promote, retry,
releases).

Tokens come from a file (``--token-file``) or from the environment
(``ROLLGUARD_API_TOKEN``); they are never logged or echoed. Each line of the
file is ``NAME:TOKEN`` or a bare ``TOKEN`` (named ``operator``); blank lines
and lines starting with ``#`` are skipped. The name is who asked, in the audit
trail of every command (``abort by ci-pipeline: ...``). The comparison is
constant-time (``hmac.compare_digest``, against every token) so response
timing does not reveal how much of a guess was right, nor which token it was near.
"""

from __future__ import annotations

import hmac
import os
import re
from pathlib import Path

from rollguard.errors import UsageError

TOKEN_ENV = "ROLLGUARD_API_TOKEN"  # noqa: S105 the variable's name, not a token
MIN_TOKEN_LENGTH = 16
DEFAULT_NAME = "operator"
_NAMED = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}):(?P<token>.+)")


class TokenAuth:
    """Checks ``Authorization: Bearer <token>`` headers against the configured tokens."""

    def __init__(self, token: str | None = None, *, named: dict[str, str] | None = None) -> None:
        tokens = dict(named or {})
        if token:
            tokens[DEFAULT_NAME] = token
        self._tokens = [(name, value.encode()) for name, value in tokens.items()]

    @property
    def configured(self) -> bool:
        """False when no token was given: every control request is then refused."""
        return bool(self._tokens)

    def allows(self, authorization: str | None) -> bool:
        """True only for ``Bearer <a configured token>``."""
        return self.identify(authorization) is not None

    def identify(self, authorization: str | None) -> str | None:
        """The name of the token presented as ``Bearer <token>``, or None."""
        if not self._tokens or not authorization:
            return None
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        given = presented.strip().encode()
        found = None
        for name, token in self._tokens:  # every one compared: no early exit to time
            if hmac.compare_digest(given, token):
                found = name
        return found

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
            lines = [
                (number, line.strip())
                for number, line in enumerate(text.splitlines(), start=1)
                if line.strip() and not line.strip().startswith("#")
            ]
            if not lines:
                raise UsageError(f"{token_file}: no API token in the file")
            return cls(named=_parse(lines, source=str(token_file)))
        token = env.get(TOKEN_ENV, "").strip()
        if not token:
            return cls(None)
        return cls(named=_parse([(1, token)], source=TOKEN_ENV))


def _parse(lines: list[tuple[int, str]], *, source: str) -> dict[str, str]:
    """``{name: token}`` from ``NAME:TOKEN`` or bare ``TOKEN`` lines; UsageError names the line."""
    tokens: dict[str, str] = {}
    for number, line in lines:
        where = f"{source}:{number}" if source != TOKEN_ENV else source
        match = _NAMED.fullmatch(line)
        name, token = (match["name"], match["token"].strip()) if match else (DEFAULT_NAME, line)
        if len(token) < MIN_TOKEN_LENGTH:
            raise UsageError(
                f"{where}: the API token must be at least {MIN_TOKEN_LENGTH} characters "
                "(e.g. `openssl rand -hex 32`)"
            )
        if name in tokens:
            raise UsageError(f"{where}: a second token named {name!r}; names must differ")
        if token in tokens.values():
            raise UsageError(f"{where}: the same token as an earlier line; tokens must differ")
        tokens[name] = token
    return tokens
