"""Every command's ``--help`` reads as written for people: no stray placeholders.

The whole command tree is walked, groups included; a flag shows no type
(``--execute <bool>`` reads as if it took a value), no usage line or
table carries a brace placeholder (``{files}...``) and no type reads as a Python
annotation (``<list[Path]>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from rollguard.cli.main import app

#: A flag shown with a type, typer's brace placeholders for arguments, and its
#: ``<list[Path]>`` for a repeated argument's type.
PLACEHOLDER = re.compile(r"<bool>|\{[A-Za-z_]+\}|<list\[")


def _paths() -> Iterator[list[str]]:
    def walk(path: list[str], command: Any) -> Iterator[list[str]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                yield from walk([*path, name], sub)

    yield from walk([], typer.main.get_command(app))


def test_no_command_help_shows_a_placeholder() -> None:
    runner = CliRunner()
    found: dict[str, list[str]] = {}
    paths = list(_paths())
    assert len(paths) > 20  # the walk reached the subcommands
    for path in paths:
        done = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100", "NO_COLOR": "1"})
        assert done.exit_code == 0, (path, done.output)
        assert "Usage: rollguard" in done.output
        if hits := sorted(set(PLACEHOLDER.findall(done.output))):
            found[" ".join(path) or "(root)"] = hits
    assert found == {}


def test_arguments_are_named_in_capitals_in_the_usage_line() -> None:
    runner = CliRunner()
    check = runner.invoke(app, ["policy", "check", "--help"], env={"COLUMNS": "100"}).output
    assert "rollguard policy check [OPTIONS] FILE..." in check
    assert re.search(r"FILE\s+<path>\.\.\.\s+Policy files to validate", check), check
    create = runner.invoke(app, ["baseline", "create", "--help"], env={"COLUMNS": "100"}).output
    assert "rollguard baseline create [OPTIONS] [REPORT]" in create
    drill = runner.invoke(app, ["drill", "--help"], env={"COLUMNS": "100"}).output
    assert re.search(r"--execute\s+Run the action", drill), drill
