"""Fixtures for the scanner and gate tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def trivy_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "trivy"


@pytest.fixture
def grype_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "grype"


@pytest.fixture
def sarif_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "sarif"
