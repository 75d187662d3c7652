"""The exit-code table has one home, errors.py; the README and the docs follow it."""

from __future__ import annotations

import re
from pathlib import Path

from rollguard.errors import EXIT_CODE_TABLE, ExitCode, exit_codes_help, exit_codes_markdown

ROOT = Path(__file__).resolve().parents[1]


def _section(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else None]


def test_the_readme_table_is_the_one_errors_py_generates() -> None:
    table = [
        line
        for line in _section(ROOT / "README.md", "## Exit codes").splitlines()
        if line[:1] == "|"
    ]
    assert "\n".join(table) == exit_codes_markdown(), (
        "README.md's exit-code table differs from rollguard.errors.EXIT_CODE_TABLE; paste:\n"
        + exit_codes_markdown()
    )


def test_every_exit_code_is_in_the_table_once() -> None:
    listed = [code for row in EXIT_CODE_TABLE for code in row.codes]
    assert sorted(listed) == sorted(ExitCode)


def test_the_ci_guide_names_each_code_as_errors_py_does() -> None:
    rows = re.findall(
        r"^\| (\d+) \| ([^|]+) \|", _section(ROOT / "docs/ci.md", "## Exit codes"), re.M
    )
    labels = {code: row.label for row in EXIT_CODE_TABLE for code in row.codes}
    assert rows
    assert {int(code): name.strip() for code, name in rows} == {
        int(code): labels[code] for code in ExitCode if code < 128
    }


def test_help_ends_with_the_table() -> None:
    from typer.testing import CliRunner

    from rollguard.cli.main import app

    shown = " ".join(CliRunner().invoke(app, ["--help"], env={"COLUMNS": "400"}).stdout.split())
    assert exit_codes_help() in shown
