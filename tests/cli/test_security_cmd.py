"""``rollguard security scan-log`` on a log, and on a file that is not one."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

Run = Callable[..., subprocess.CompletedProcess[str]]
Invoke = Callable[..., Any]


def _line(minute: int, target: str, status: int = 200, agent: str = "Mozilla/5.0") -> str:
    stamp = f"[27/Nov/2026:09:{minute:02d}:10 +0000]"
    return f'10.0.0.7 - - {stamp} "GET {target} HTTP/1.1" {status} 10 "-" "{agent}"\n'


def test_scan_reports_matches_and_peak_rate(invoke_cli: Invoke, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [_line(1, "/admin", 403)] * 3 + [_line(2, "/admin", 403)] * 5
    lines += [_line(2, "/search?q=union+station"), _line(3, "/x?f=../../etc/passwd", 404)]
    lines += ["not a log line\n"]
    log.write_text("".join(lines))
    done = invoke_cli("security", "scan-log", str(log), "--output", "json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["requests"] == 10
    assert body["unauthorized"] == 8
    assert body["peak_unauthorized_per_minute"] == 5
    assert [match["line"] for match in body["matches"]] == [10]
    assert body["unparsed_lines"] == 1


def test_json_log_is_refused_with_the_line(run_cli: Run, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text('{"ts": "2026-11-27T09:00:00Z", "path": "/"}\n')
    done = run_cli("security", "scan-log", str(log))
    assert done.returncode == 2
    assert "app.log:1: not a combined access-log line" in done.stderr
    assert "Traceback" not in done.stderr


def test_wrong_format_option_is_refused(invoke_cli: Invoke, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(_line(1, "/"))
    done = invoke_cli("security", "scan-log", str(log), "--log-format", "haproxy")
    assert done.returncode == 2
    assert "not a haproxy access-log line" in done.stderr


def test_error_message_keeps_its_bracketed_text(run_cli: Run, tmp_path: Path) -> None:
    """The expected-format hint contains ``[day/Mon/year...]``; rich markup must not eat it."""
    log = tmp_path / "app.log"
    log.write_text("garbage\n")
    done = run_cli("security", "scan-log", str(log))
    assert done.returncode == 2
    assert "[day/Mon/year:HH:MM:SS +zone]" in done.stderr


def test_attacker_text_that_looks_like_markup_is_printed_not_parsed(
    run_cli: Run, tmp_path: Path
) -> None:
    """A request target such as ``[/script]`` crashed rich's markup parser with a traceback."""
    log = tmp_path / "access.log"
    log.write_text(_line(1, "/x?q=[/script]../../etc/passwd", 404))
    done = run_cli("security", "scan-log", str(log))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "[/script]" in done.stdout
