"""Test pictures land in one known, git-ignored folder, or the one CI names."""

from __future__ import annotations

from pathlib import Path

import pytest

from artifacts import DEFAULT, ROOT, artifact_path


def test_pictures_go_to_test_artifacts_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLLGUARD_ARTIFACTS", raising=False)
    assert artifact_path("page.png") == ROOT / "test-artifacts" / "page.png" == DEFAULT / "page.png"
    assert DEFAULT.is_dir()
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "test-artifacts/" in ignored


def test_rollguard_artifacts_names_another_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ROLLGUARD_ARTIFACTS", str(tmp_path / "ci" / "pictures"))
    path = artifact_path("report-1280.png")
    assert path == tmp_path / "ci" / "pictures" / "report-1280.png"
    assert path.parent.is_dir()
