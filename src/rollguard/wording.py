"""Counted nouns for people: "1 rollback", "2 rollbacks", never "rollback(s)"."""

from __future__ import annotations


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """``count`` followed by the noun in the number it takes (``plural`` defaults to +s)."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
