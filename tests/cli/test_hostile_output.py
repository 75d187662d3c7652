"""Every command, fed hostile text through its files, paths and values, prints it as text.

The hostile string carries an ANSI clear-screen and title change, a bell, a
backspace, a right-to-left override, rich markup and an emoji code. No command
may pass a control character to the terminal, turn ``:100:`` into an emoji
(``p.yaml💯1``) or swallow ``[bold]`` as markup. The test walks the whole
command tree: a command without a recipe here fails it.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import typer

from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from rollguard.cli.main import app

EVIL = "\x1b[2J\x1b]0;pwned\x07[bold]boom[/bold]:100:\u202eevil\x08\x9b"
#: The same, fit for a file name (no "/").
EVIL_NAME = EVIL.replace("/", "")
#: What a terminal must never receive raw.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
YAML_EVIL = json.dumps(EVIL)  # a double-quoted YAML scalar is a JSON string


def _policy(folder: Path, extra: str = "") -> str:
    (folder / "series.csv").write_text(
        "time,version,requests,errors,latency_p95_ms,memory_mb\n"
        + "".join(f"{t},stable,100,1,100,200\n{t},canary,100,1,100,200\n" for t in range(5, 65, 5))
    )
    (folder / "p.yaml").write_text(
        "target: {deployment: shop}\n"
        "metrics: {provider: replay, file: series.csv}\n"
        f"triggers:\n  {YAML_EVIL}: {{signal: error_rate_percent, threshold: 5%}}\n" + extra
    )
    return str(folder / "p.yaml")


def _bad_policy(folder: Path) -> str:
    """A problem on line 100 whose message quotes hostile text."""
    lines = ["target: {deployment: shop}", "metrics: {provider: replay, file: s.csv}"]
    lines += [f"# {n}" for n in range(3, 100)]
    lines.append(f"error_rate_trigger: {{threshold: {YAML_EVIL}}}")
    (folder / f"{EVIL_NAME}.yaml").write_text("\n".join(lines) + "\n")
    return str(folder / f"{EVIL_NAME}.yaml")


def _store(folder: Path) -> str:
    url = f"sqlite:///{folder / 'audit.db'}"
    store = open_store(url)
    store.append(
        AuditRecord(
            kind="gate",
            deployment=EVIL,
            timestamp="2099-01-01T00:00:00Z",
            trigger=EVIL,
            reason=EVIL,
            outcome="blocked",
            evidence={"note": EVIL},
        )
    )
    store.close()
    return url


def _access_log(folder: Path) -> str:
    path = folder / "access.log"
    path.write_text(
        f'10.0.0.1 - - [20/Nov/2026:09:00:00 +0000] "GET /../../etc/passwd?{EVIL.replace(" ", "")}'
        f' HTTP/1.1" 403 12 "-" "{EVIL}"\n'
    )
    return str(path)


def _trivy(folder: Path, fixtures: Path) -> str:
    report = json.loads((fixtures / "trivy" / "trivy-action-alpine-3.10.json").read_text())
    for result in report.get("Results", []):
        for vulnerability in result.get("Vulnerabilities") or []:
            vulnerability["PkgName"] = EVIL
            vulnerability["VulnerabilityID"] = EVIL
    path = folder / "trivy.json"
    path.write_text(json.dumps(report))
    return str(path)


def _baseline(folder: Path) -> str:
    path = folder / "b.json"
    path.write_text(
        json.dumps(
            {
                "timestamp": "2026-11-20T09:00:00Z",
                "source": EVIL,
                "metrics": {"error_rate_percent": 1, "avg_latency_ms": 90, "p95_latency_ms": 200},
                "thresholds": {EVIL: 5},
            }
        )
    )
    return str(path)


def _gate_policy(folder: Path) -> str:
    return _policy(folder, "security_trigger: {}\n")


Recipe = Callable[[Path, Path], list[str]]
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens
#: Any variable that is set stands in for serve's token: nothing receives it.
TOKEN = ("--token-env", "HOME")

RECIPES: dict[str, list[Recipe]] = {
    "policy check": [lambda d, _: ["policy", "check", _bad_policy(d), _policy(d)]],
    "policy explain": [
        lambda d, _: ["policy", "explain", _policy(d)],
        lambda d, _: ["policy", "explain", _bad_policy(d)],
    ],
    "watch": [
        lambda d, _: ["watch", "-p", _policy(d), "--for", "30s"],
        lambda d, _: ["watch", "-p", _bad_policy(d)],
    ],
    "backtest": [lambda d, _: ["backtest", "-p", _policy(d), "--series", f"{d}/{EVIL_NAME}.csv"]],
    "drill": [lambda d, _: ["drill", "-p", _policy(d), "--trigger", EVIL]],
    "gate": [lambda d, f: ["gate", "-p", _gate_policy(d), "--vuln-report", _trivy(d, f)]],
    "baseline create": [
        lambda d, _: ["baseline", "create", "--from-k6", f"{d}/{EVIL_NAME}.json"],
        lambda d, _: ["baseline", "create", "--from-k6", _baseline(d)],
    ],
    "baseline show": [lambda d, _: ["baseline", "show", _baseline(d)]],
    "audit list": [
        lambda d, _: ["audit", "list", "--db", _store(d)],
        lambda d, _: ["audit", "list", "--db", f"sqlite:///{d}/{EVIL_NAME}.db"],
        lambda d, _: ["audit", "list", "--db", _store(d), "--since", EVIL],
    ],
    "audit show": [lambda d, _: ["audit", "show", "1", "--db", _store(d)]],
    "audit export": [
        lambda d, _: ["audit", "export", "--db", _store(d), "-f", f"{d}/x/{EVIL_NAME}"]
    ],
    "audit verify": [lambda d, _: ["audit", "verify", "--db", _store(d), "--key-env", EVIL]],
    "report": [lambda d, _: ["report", "--db", _store(d), "--since", "36500d"]],
    "security scan-log": [lambda d, _: ["security", "scan-log", _access_log(d)]],
    "generate alerts": [lambda d, _: ["generate", "alerts", "-p", _policy(d), "--baseline", EVIL]],
    "generate grafana": [lambda d, _: ["generate", "grafana", "-p", _bad_policy(d)]],
    "generate crd": [lambda d, _: ["generate", "crd", "-f", f"{d}/x/{EVIL_NAME}"]],
    "serve": [lambda d, _: ["serve", "--policies", f"{d}/{EVIL_NAME}"]],
    "controller": [
        lambda d, _: ["controller", "--audit-url", f"mysql://{EVIL}"],
        lambda d, _: [
            "controller",
            "--audit-url",
            f"sqlite:///{d}/controller.db",
            "--kubeconfig",
            f"{d}/{EVIL_NAME}",
        ],
    ],
    "demo": [lambda d, _: ["demo", "--audit-url", f"mysql://{EVIL}"]],
    **{
        f"release {gate}": [
            lambda d, _, gate=gate: ["release", gate, EVIL, "--server", UNREACHABLE, *TOKEN],
            lambda d, _, gate=gate: ["release", gate, "shop", "--server", f"http://{EVIL}", *TOKEN],
            lambda d, _, gate=gate: [
                *("release", gate, "shop", "--server", UNREACHABLE, *TOKEN),
                *("--reason", EVIL, "--as", EVIL),
            ],
        ]
        for gate in ("pause", "resume", "promote", "abort", "retry")
    },
}


def _leaves() -> set[str]:
    found: set[str] = set()

    def walk(prefix: str, command: object) -> None:
        commands = getattr(command, "commands", None)
        if commands is None:
            found.add(prefix)
            return
        for name, sub in commands.items():
            walk(f"{prefix} {name}".strip(), sub)

    walk("", typer.main.get_command(app))
    return found


def test_every_command_has_a_recipe() -> None:
    assert set(RECIPES) == _leaves()


CASES = [(name, n) for name, recipes in RECIPES.items() for n in range(len(recipes))]


@pytest.mark.parametrize(("name", "number"), CASES)
def test_hostile_text_is_printed_as_text(
    name: str,
    number: int,
    tmp_path: Path,
    rollguard_cmd: list[str],
    cli_env: dict[str, str],
    fixtures_dir: Path,
) -> None:
    args = RECIPES[name][number](tmp_path, fixtures_dir)
    done = subprocess.run(
        [*rollguard_cmd, *args],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    printed = done.stdout + done.stderr
    assert "Traceback" not in printed, printed
    assert done.returncode in (0, 1, 2, 3, 4, 6), printed
    raw = RAW.findall(printed)
    assert not raw, f"{name}: raw control characters {raw!r} in:\n{printed}"
    assert "💯" not in printed
    if "boom" in printed:  # shown, the markup is shown as written, not consumed
        assert "[bold]boom" in printed


def test_a_problem_on_line_100_keeps_file_line_col(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    path = _bad_policy(tmp_path)
    done = subprocess.run(
        [*rollguard_cmd, "watch", "-p", path],
        capture_output=True,
        text=True,
        env=cli_env,
        check=False,
    )
    assert done.returncode == 2
    shown = path.replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace("\u202e", "\\u202e")
    shown = shown.replace("\x08", "\\x08").replace("\x9b", "\\x9b")
    assert f"{shown}:100:22: error_rate_trigger.threshold:" in done.stderr
