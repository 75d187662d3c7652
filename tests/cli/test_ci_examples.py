"""The CI examples stay valid YAML and only use options the CLI really has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main
from ruamel.yaml import YAML

from rollguard.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
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
