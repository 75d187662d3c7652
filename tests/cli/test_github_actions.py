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


def test_watch_summary_says_a_release_left_at_its_step() -> None:
    """A healthy watch whose time ran out mid-release is not shown as a finished one."""
    from rollguard.cli.render import summary_markdown
    from rollguard.controller.recovery import RAN_OUT, CrashedStep
    from rollguard.controller.stopped import StopNote
    from rollguard.controller.watch import Outcome, WatchResult
    from rollguard.policy.actions import Action

    result = WatchResult(
        outcome=Outcome.HEALTHY,
        action=Action.CONTINUE,
        trigger=None,
        reason="all_metrics_healthy",
        severity="info",
        evidence=[],
        started_at=0.0,
        decided_at=None,
        ended_at=600.0,
        evaluations=120,
        watch_id="w",
    )
    assert "**Release:**" not in summary_markdown(result, deployment="shop")
    result.left = StopNote(RAN_OUT, progressive=True, at=CrashedStep(1, 25, "w"), steps=4)
    assert (
        "**Release:** time ran out before the release ended: the release stays at step 2 of 4, "
        "canary at 25%"
    ) in summary_markdown(result, deployment="shop")
    assert result.as_dict()["release"] == {
        "step": 2,
        "of": 4,
        "canary_weight": 25,
        "resumable": True,
    }
