"""Fixtures for the ``serve`` tests (the harness is in serve_harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_harness import Served, start_serve, write_policies


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """``serve`` over the standard folder: shop (goes bad), cart (healthy), broken.yaml."""
    write_policies(tmp_path)
    with start_serve(tmp_path) as running:
        yield running
