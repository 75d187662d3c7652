"""One command-line grammar, checked over the whole command tree.

``-o/--output`` is always the output format, a file to write is always
``-f/--output-file``, ``-p`` is always ``--policy``, every enumerated option
refuses unknown values with exit 2 and the list of valid ones, and old
spellings are hidden aliases that still work and warn.
"""

from __future__ import annotations

import enum
import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from rollguard.cli.main import app
from support import Run

FORMATS = {"text", "json", "md", "html", "csv"}
#: Old spellings kept as hidden, warning aliases (the grammar test ignores hidden options).
DEPRECATED = {"-O", "--out", "--format", "-o"}


# Typer carries its own copy of click: its classes are checked by shape, not isinstance.
Command = Any
Option = Any


def _choices(option: Option) -> list[str]:
    """The values an enumerated option takes (an Enum or a Literal), else none."""
    annotation = option.type_descriptor.annotation
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(member.value) for member in annotation]
    if typing.get_origin(annotation) is typing.Literal:
        return [str(value) for value in typing.get_args(annotation)]
    return []


def _is_choice(option: Option) -> bool:
    return bool(_choices(option))


def _commands() -> Iterator[tuple[str, Command]]:
    def walk(prefix: str, command: Command) -> Iterator[tuple[str, Command]]:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(f"{prefix} {name}".strip(), sub)
        else:
            yield prefix, command

    yield from walk("", typer.main.get_command(app))


COMMANDS = dict(_commands())


def _options(command: Command) -> list[Option]:
    return [p for p in command.params if p.param_type_name == "option" and not p.hidden]


def test_the_tree_has_every_command() -> None:
    expected = {
        "audit export", "audit list", "audit show", "audit verify", "backtest",
        "baseline create", "baseline show", "controller", "demo", "drill", "gate",
        "generate alerts", "generate crd", "generate grafana", "policy check",
        "policy explain", "release abort", "release pause", "release promote", "release resume",
            "release retry", "report", "security scan-log", "serve", "watch",
    }  # fmt: skip
    assert set(COMMANDS) == expected


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_one_grammar(name: str) -> None:
    command = COMMANDS[name]
    for option in _options(command):
        opts = set(option.opts) | set(option.secondary_opts)
        if "-o" in opts or "--output" in opts:
            assert opts == {"-o", "--output"}, (name, opts)
            assert _is_choice(option), name
            assert set(_choices(option)) <= FORMATS, (name, _choices(option))
        if "-f" in opts or "--output-file" in opts:
            assert opts == {"-f", "--output-file"}, (name, opts)
        if "-p" in opts or "--policy" in opts:
            assert opts == {"-p", "--policy"}, (name, opts)
        if "--format" in opts:
            pytest.fail(f"{name}: --format is ambiguous; -o/--output is the format")
    for option in command.params:
        if option.param_type_name == "option" and option.hidden:
            assert set(option.opts) <= DEPRECATED, (name, option.opts)


def test_commands_with_a_result_for_machines_have_json() -> None:
    without = {
        "serve", "controller", "generate alerts", "generate crd", "generate grafana",
        "policy explain",
    }  # fmt: skip
    for name, command in COMMANDS.items():
        if name in without:
            continue
        outputs = [o for o in _options(command) if "--output" in o.opts]
        assert outputs, f"{name} has no -o/--output"
        assert _is_choice(outputs[0])
        assert "json" in _choices(outputs[0]), name


ENUMERATED = [
    (name, option)
    for name, command in COMMANDS.items()
    for option in _options(command)
    if _is_choice(option)
]


def test_enumerated_options_are_choices() -> None:
    named = {(name, o.opts[0]) for name, o in ENUMERATED}
    for expected in [
        ("audit list", "--kind"),
        ("report", "--output"),
        ("audit export", "--output"),
        ("security scan-log", "--log-format"),
        ("serve", "--log-level"),
        ("demo", "--scenario"),
        ("demo", "--stack"),
    ]:
        assert expected in named


@pytest.mark.parametrize(("name", "option"), ENUMERATED, ids=lambda v: getattr(v, "name", v))
def test_an_unknown_value_is_exit_2_listing_the_valid_ones(name: str, option: Option) -> None:
    done = CliRunner().invoke(
        app, [*name.split(), option.opts[0], "rollback"], env={"COLUMNS": "300"}
    )
    assert done.exit_code == 2, done.output
    text = " ".join(done.output.split()).replace("│", "")
    assert "'rollback' is not one of" in " ".join(text.split())
    for choice in _choices(option):
        assert str(choice) in text


def test_version(run_cli: Run) -> None:
    from importlib.metadata import version

    done = run_cli("--version")
    assert (done.returncode, done.stdout) == (0, f"rollguard {version('rollguard')}\n")


def _store(folder: Path) -> str:
    url = f"sqlite:///{folder / 'audit.db'}"
    store = open_store(url)
    store.append(
        AuditRecord(
            kind="gate",
            deployment="checkout-" + "x" * 120,  # far wider than 80 columns
            timestamp="2026-11-20T09:00:00Z",
            reason="a reason long enough to be folded at eighty columns if anything folded it",
            outcome="blocked",
        )
    )
    store.close()
    return url


def test_old_spellings_still_work_and_warn(
    tmp_path: Path, run_cli: Run, fixtures_dir: Path
) -> None:
    k6 = str(fixtures_dir / "k6" / "k6-reporter-simple.json")
    policy = str(Path(__file__).resolve().parents[2] / "examples" / "sequential-policy.yaml")
    db = _store(tmp_path)
    (tmp_path / "access.log").write_text(
        '10.0.0.1 - - [20/Nov/2026:09:00:00 +0000] "GET /login HTTP/1.1" 401 12 "-" "curl/8"\n'
    )
    cases = [
        (("report", "--format", "html", "--out", "r.html", "--db", db), "r.html", "<html"),
        (("audit", "export", "--format", "csv", "--out", "a.csv", "--db", db), "a.csv", "prevHash"),
        (("audit", "list", "-O", "json", "--db", db), None, '"kind": "gate"'),
        (("security", "scan-log", "access.log", "--format", "combined"), None, "1 requests"),
        (("baseline", "create", "--from-k6", k6, "--out", "b.json"), "b.json", "timestamp"),
        (("generate", "grafana", "-p", policy, "-o", "g.json"), "g.json", "panels"),
    ]
    for args, written, expected in cases:
        done = run_cli(*args)
        assert done.returncode == 0, (args, done.stderr)
        assert "deprecated" in done.stderr, args
        text = (tmp_path / written).read_text() if written else done.stdout
        assert expected in text, args


def test_a_format_given_as_the_file_is_refused(tmp_path: Path, run_cli: Run) -> None:
    """Before one grammar, `report -f html` meant the format: never write a file named html."""
    done = run_cli("report", "-f", "html", "--db", _store(tmp_path))
    assert done.returncode == 2
    assert "use -o html" in done.stderr
    assert not (tmp_path / "html").exists()


def test_report_and_policy_check_speak_json(tmp_path: Path, run_cli: Run) -> None:
    db = _store(tmp_path)
    (tmp_path / "p.yaml").write_text("target: {deployment: a}\nbogus: 1\n")
    report = run_cli("report", "-o", "json", "--db", db)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["blocked_deployments"] == 1
    check = run_cli("policy", "check", "-o", "json", "p.yaml")
    assert check.returncode == 2
    body = json.loads(check.stdout)
    assert body["ok"] is False
    problems = body["files"][0]["problems"]
    assert {"line": 2, "field": "bogus"}.items() <= problems[-1].items()


def test_nothing_wraps_at_80_columns_when_stdout_is_not_a_terminal(
    tmp_path: Path, run_cli: Run
) -> None:
    no_width = {"COLUMNS": ""}  # as in a CI log: no terminal, no width set
    done = run_cli("audit", "list", "--db", _store(tmp_path), env=no_width)
    assert done.returncode == 0, done.stderr
    [row] = [line for line in done.stdout.splitlines() if "checkout-" in line]
    assert "checkout-" + "x" * 120 in row
    assert "blocked" in row
    missing = tmp_path / ("folder-" + "y" * 100) / "audit.db"
    failed = run_cli("audit", "list", "--db", f"sqlite:///{missing}", env=no_width)
    assert failed.returncode == 6
    assert len(failed.stderr.strip().splitlines()) == 1
