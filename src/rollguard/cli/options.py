"""Options shared by several commands."""

from __future__ import annotations

from enum import StrEnum


class OutputFormat(StrEnum):
    """Rich text for people, JSON for machines."""

    TEXT = "text"
    JSON = "json"
