"""Fixtures for the generator tests: promtool and the example policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import require_binary


@pytest.fixture
def promtool() -> Path:
    """Prometheus's rule checker and unit-test runner (Debian package ``prometheus``)."""
    return require_binary("promtool", hint="apt-get install prometheus")
