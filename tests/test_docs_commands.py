"""Every `rollguard` command in README.md and docs/*.md works as written.

Commands are taken from the documents' shell blocks (``bash``, ``sh``,
``console`` and plain ones; ``$`` prompts and backslash continuations as a
shell reads them). A line with ``[optional]`` parts is a synopsis: each option
it names must exist on that command. Every other line runs, exactly as
written, with bash, in the order of its document, in a folder holding the
repository's ``examples/`` and the files the documents name, taken from what
the repository ships:

- ``rollguard.yaml`` is ``examples/seed-policy.yaml`` (beside it its
  ``performance-baseline.json``), ``.rollguard-ignore.yaml`` is
  ``examples/ci/rollguard-ignore.yaml``;
- the scanners' and load tests' reports (``trivy.json``, ``grype.json``,
  ``summary.json``, ``report.json``, ``run_stats.csv``) are the real tools'
  output kept in ``tests/fixtures``;
- the folder's audit trail holds one drill (made first with ``rollguard
  drill --policy rollguard.yaml``), as a reader's would hold their watches.

Each command must end with the exit code the text implies (0 unless listed in
:data:`EXPECTED`). The few commands that need what a test machine does not
have are listed in :data:`EXCLUDED`, each with its reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main

from rollguard.cli.main import app
from support import require_binary

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}

WORKSPACE = {
    "rollguard.yaml": ROOT / "examples" / "seed-policy.yaml",
    "performance-baseline.json": ROOT / "examples" / "performance-baseline.json",
    ".rollguard-ignore.yaml": ROOT / "examples" / "ci" / "rollguard-ignore.yaml",
    "trivy.json": FIXTURES / "trivy" / "trivy-action-alpine-3.10.json",
    "grype.json": FIXTURES / "grype" / "TestJsonImgsPresenter.golden",
    "summary.json": FIXTURES / "k6" / "k6-reporter-simple.json",
    "report.json": FIXTURES / "artillery" / "report-viewer-test_report_v2.json",
    "run_stats.csv": FIXTURES / "locust" / "phoenix-loadgen_stats.csv",
}

#: Exit codes other than 0 that the text implies.
EXPECTED = {
    # the Trivy report holds two criticals over the seed's "0 tolerance": blocked
    "rollguard gate  --policy rollguard.yaml --vuln-report trivy.json": 3,
    "rollguard gate --policy rollguard.yaml  --vuln-report trivy.json": 3,
    "rollguard demo ": 1,  # the default scenario breaks the canary: rolled back
}

#: Commands that need what a test machine has not, and the test that covers them instead.
EXCLUDED = {
    "rollguard watch --policy rollguard.yaml --for 10m --output json": (
        "watches a live deployment for 10 minutes through the policy's Prometheus; the "
        "demo recipe runs the same command on the demo's parts (tests/cli/test_examples.py)"
    ),
    "rollguard baseline create --from-metrics --policy rollguard.yaml --window 30m": (
        "reads the stable version's live metrics from the policy's Prometheus; "
        "tests/cli/test_baseline_cmd.py runs --from-metrics on a recording"
    ),
    'rollguard audit verify --db "$URL" --key-env AUDIT_CHAIN_KEY': (
        "needs your keyed trail ($URL, its key); tests/cli/test_audit_keyed.py runs it "
        "on a keyed SQLite trail"
    ),
}

#: Blocks run as one script by another test (they start servers in the background).
SCRIPTS = {"docs/demo.md": "tests/cli/test_examples.py::test_the_demo_recipe_runs_as_pasted"}


@dataclass(frozen=True)
class Command:
    """One documented command line."""

    document: str
    line: str

    @property
    def synopsis(self) -> bool:
        return "[" in self.line


def _blocks(text: str) -> list[tuple[str, str]]:
    fence = r"^[ \t]*```([a-z]*)\n(.*?)^[ \t]*```"  # fenced blocks, also inside list items
    return re.findall(fence, text, flags=re.DOTALL | re.MULTILINE)


def _commands(path: Path) -> list[Command]:
    name = str(path.relative_to(ROOT))
    found = []
    for info, body in _blocks(path.read_text(encoding="utf-8")):
        if info not in SHELL_BLOCKS:
            continue
        if re.search(r"&\s*$", body, flags=re.MULTILINE):  # a script: see SCRIPTS
            assert name in SCRIPTS, f"{name}: a block starts servers; who runs it?"
            continue
        joined = re.sub(r"\\\n\s*", " ", body)
        for raw in joined.splitlines():
            line = raw.strip()
            if info == "console":
                if not line.startswith("$ "):
                    continue  # the command's output
                line = line[2:]
            if line.startswith("rollguard ") or line == "rollguard":
                found.append(Command(name, line))
    return found


ALL = [command for path in DOCUMENTS for command in _commands(path)]
SYNOPSES = [command for command in ALL if command.synopsis]


def _words(line: str) -> list[str]:
    return line.split("#", 1)[0].split()


def _command_of(words: list[str]) -> object:
    command: object = typer.main.get_command(app)
    for word in words[1:]:
        commands = getattr(command, "commands", None)
        if commands is None or word not in commands:
            break
        command = commands[word]
    return command


@pytest.mark.parametrize("command", SYNOPSES, ids=lambda c: f"{c.document}: {c.line[:60]}")
def test_a_synopsis_names_only_options_its_command_has(command: Command) -> None:
    words = _words(command.line)
    target = _command_of(words)
    known = {
        opt
        for param in getattr(target, "params", [])
        if not getattr(param, "hidden", False)
        for opt in [*param.opts, *getattr(param, "secondary_opts", [])]
    }
    named = {
        option
        for word in words
        for option in re.split(r"[\[\]|]", word)
        if option.startswith("-") and option not in ("-", "--")
    }
    assert named <= known, f"{command.document}: {command.line}: unknown {named - known}"


def test_the_exclusions_are_documented_commands() -> None:
    lines = {command.line.split("  #")[0].strip() for command in ALL}
    for excluded in EXCLUDED:
        assert any(line.startswith(excluded) for line in lines), excluded


def _workspace(folder: Path, env: dict[str, str]) -> None:
    shutil.copytree(ROOT / "examples", folder / "examples")
    for name, source in WORKSPACE.items():
        shutil.copyfile(source, folder / name)
    seeded = subprocess.run(
        [sys.executable, "-m", "rollguard", "drill", "--policy", "rollguard.yaml"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr


def _expected(line: str) -> int | None:
    """The exit code ``line`` should end with; ``None`` when it is excluded."""
    for prefix, reason in EXCLUDED.items():
        if line.startswith(prefix):
            assert reason
            return None
    for prefix, code in EXPECTED.items():
        if line.split("  #", maxsplit=1)[0].strip() == prefix or line.startswith(prefix):
            return code
    return 0


RUNNABLE = sorted({command.document for command in ALL if not command.synopsis})


@pytest.mark.slow
@pytest.mark.parametrize("document", RUNNABLE)
def test_every_command_runs_as_written(
    document: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    bash = require_binary("bash", hint="apt-get install bash")
    env = {**cli_env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{cli_env['PATH']}"}
    _workspace(tmp_path, env)
    for command in ALL:
        if command.document != document or command.synopsis:
            continue
        code = _expected(command.line)
        if code is None:
            continue
        done = subprocess.run(
            [str(bash), "-c", command.line],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert "Traceback" not in done.stderr, f"{document}: {command.line}\n{done.stderr}"
        assert done.returncode == code, (
            f"{document}: {command.line}\nexit {done.returncode}, expected {code}\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
