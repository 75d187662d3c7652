"""The CI examples stay valid YAML and only use options the CLI really has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from ruamel.yaml import YAML

from rollguard.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"
FILES = ["github-actions.yml", "gitlab-ci.yml"]


def _command_lines(text: str) -> list[list[str]]:
    """Each `rollguard ...` invocation, folded (`>`) lines joined, as words."""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    joined = re.sub(r"\n\s+(--)", r" \1", code)
    return [
        match.split()
        for match in re.findall(r"rollguard (?:gate|watch|baseline create)[^\n|>]*", joined)
    ]


@pytest.mark.parametrize("name", FILES)
def test_example_is_yaml_and_options_exist(name: str) -> None:
    text = (EXAMPLES / name).read_text()
    YAML(typ="safe").load(text)
    root = typer.main.get_command(app)
    commands = root.commands  # type: ignore[attr-defined]
    lines = _command_lines(text)
    assert {words[1] for words in lines} >= {"gate", "watch", "baseline"}
    for words in lines:
        command = commands[words[1]]
        if hasattr(command, "commands"):  # a group: `baseline create`
            command = command.commands[words[2]]
        known = {opt for param in command.params for opt in getattr(param, "opts", [])}
        used = {word for word in words if word.startswith("-")}
        assert used <= known, f"{name}: {' '.join(words)} uses unknown {used - known}"


@pytest.mark.parametrize("name", FILES)
def test_example_says_what_each_exit_code_means(name: str) -> None:
    text = (EXAMPLES / name).read_text()
    for phrase in ("rolled back", "blocked", "inconclusive", "action failed", "invalid input"):
        assert phrase in text


def _steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if str(step.get("uses", "")).startswith(action)]


def test_github_actions_carries_the_baseline_and_the_trail_between_runs() -> None:
    """The baseline job runs (schedule/dispatch), saves where the gate reads, and the
    audit trail next to rollguard.yaml is restored before the gate and saved after."""
    flow = YAML(typ="safe").load((EXAMPLES / "github-actions.yml").read_text())
    assert {"push", "schedule", "workflow_dispatch"} <= set(flow["on"])
    deploy, baseline = flow["jobs"]["deploy"], flow["jobs"]["baseline"]
    assert "schedule" in baseline["if"]
    assert "push" in deploy["if"]
    [saved] = _steps_using(baseline, "actions/cache/save")
    restored = {
        step["with"]["path"]: step["with"] for step in _steps_using(deploy, "actions/cache/restore")
    }
    gate = next(step["run"] for step in deploy["steps"] if "rollguard gate" in step.get("run", ""))
    baseline_path = saved["with"]["path"]
    assert f"--baseline {baseline_path}" in gate
    assert restored[baseline_path]["restore-keys"] in saved["with"]["key"]
    trail = ".rollguard/"  # audit.url's default, relative to rollguard.yaml at the root
    assert trail in restored
    [save_trail] = _steps_using(deploy, "actions/cache/save")
    assert (save_trail["with"]["path"], save_trail["if"]) == (trail, "always()")
    assert restored[trail]["restore-keys"] in save_trail["with"]["key"]
    order = [step.get("name", "") for step in deploy["steps"]]
    assert order.index("Restore the audit trail") < order.index("Pre-deployment gate")


def test_gitlab_carries_the_baseline_and_the_trail_between_pipelines() -> None:
    flow = YAML(typ="safe").load((EXAMPLES / "gitlab-ci.yml").read_text())
    baseline, gate, watch = flow["baseline"], flow["gate"], flow["watch"]
    [pushed] = baseline["cache"]
    assert pushed["policy"] == "push"
    pulled = {cache["key"]: cache for cache in gate["cache"]}
    assert pulled[pushed["key"]]["paths"] == pushed["paths"]
    assert f"--baseline {pushed['paths'][0]}" in " ".join(gate["script"])
    assert pulled["rollguard-audit"]["paths"] == [".rollguard/"]
    assert watch["extends"] == [".release", ".audit-trail"]
    assert flow[".audit-trail"]["cache"][0]["key"] == "rollguard-audit"
    assert flow[".release"]["rules"][0]["if"] == '$CI_PIPELINE_SOURCE != "schedule"'
