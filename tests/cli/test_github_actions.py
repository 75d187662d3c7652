"""The GitHub Actions helper: escaping of workflow commands and the step summary."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rollguard.cli.github import GitHubActions, markdown_cell


def test_commands_are_escaped() -> None:
    out = io.StringIO()
    gh = GitHubActions({"GITHUB_ACTIONS": "true"}, stream=out)
    gh.error("50% of\nrequests", title="a: b, c")
    assert out.getvalue() == "::error title=a%3A b%2C c::50%25 of%0Arequests\n"


def test_disabled_outside_actions(tmp_path: Path) -> None:
    out = io.StringIO()
    summary = tmp_path / "s.md"
    gh = GitHubActions({"GITHUB_STEP_SUMMARY": str(summary)}, stream=out)
    gh.warning("x")
    assert gh.summary("# hi") is False
    assert out.getvalue() == ""
    assert not summary.exists()


def test_summary_appends(tmp_path: Path) -> None:
    summary = tmp_path / "s.md"
    gh = GitHubActions({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert gh.summary("one")
    assert gh.summary("two")
    assert summary.read_text() == "one\n\ntwo\n\n"


def test_markdown_cell_keeps_the_row_intact() -> None:
    assert markdown_cell("a|b\nc") == "a\\|b c"


def test_unwritable_summary_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The gate's exit 3 must survive a job summary path that cannot be written."""
    gh = GitHubActions({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path)})
    assert gh.summary("one") is False
    assert "cannot write the job summary" in caplog.text
