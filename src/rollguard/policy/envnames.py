"""Secrets are named, never written: the ``*_env`` fields of a policy.

A field ending in ``_env`` holds the name of the environment variable that
holds a secret. Strict on purpose (upper case, not a long hex string): a secret
pasted there by mistake must be refused, and the message never quotes it, nor
does any later "variable ... is not set".
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
_HEX_KEY = re.compile(r"[0-9A-F]{32,}")


def env_name_problem(name: str, *, holds: str = "the secret") -> str | None:
    """Why ``name`` cannot name the environment variable holding a secret, else None."""
    if _ENV_NAME.fullmatch(name) and not _HEX_KEY.fullmatch(name):
        return None
    return (
        f"expected the name of an environment variable holding {holds} "
        f"(upper-case letters, digits, underscores), never {holds} itself"
    )


def key_env_problem(name: str) -> str | None:
    """:func:`env_name_problem` for the audit key."""
    return env_name_problem(name, holds="the key")


def _env_name(name: str) -> str:
    problem = env_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


#: A field naming an environment variable that holds a secret (``*_env``).
EnvName = Annotated[
    str,
    AfterValidator(_env_name),
    WithJsonSchema({"type": "string", "pattern": f"^{_ENV_NAME.pattern}$"}),
]
