"""Following a growing access log: new lines only, rotation, partial lines, bad lines."""

from __future__ import annotations

from pathlib import Path

from rollguard.security.events import EventLog
from rollguard.security.tailer import AccessLogTailer


def _line(target: str, status: int = 200, agent: str = "Mozilla/5.0") -> str:
    stamp = "[27/Nov/2026:09:00:00 +0000]"
    return f'10.0.0.7 - - {stamp} "GET {target} HTTP/1.1" {status} 10 "-" "{agent}"\n'


def test_starts_at_the_end_and_reads_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(_line("/old?id=1' or 1=1--", 403))
    events = EventLog()
    tailer = AccessLogTailer(log, events=events)
    assert tailer.poll(now=100.0) == 0  # what was there before the watch is not judged
    with log.open("a") as handle:
        handle.write(_line("/ok") + _line("/admin", 403) + _line("/x?f=../../etc/passwd", 404))
    assert tailer.poll(now=110.0) == 3
    assert events.tallies(start=0, end=200) == (3, 1)
    [event] = events.events(start=0, end=200)
    assert event.kind == "path_traversal"
    assert event.at == 110.0


def test_partial_line_waits_for_its_end(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    tailer = AccessLogTailer(log, events=EventLog())
    tailer.poll(now=1.0)
    whole = _line("/a")
    with log.open("a") as handle:
        handle.write(whole[:30])
    assert tailer.poll(now=2.0) == 0
    with log.open("a") as handle:
        handle.write(whole[30:])
    assert tailer.poll(now=3.0) == 1
    assert tailer.problems == 0


def test_rotation_starts_over(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    events = EventLog()
    tailer = AccessLogTailer(log, events=events)
    tailer.poll(now=1.0)
    log.write_text(_line("/a") + _line("/b"))
    tailer.poll(now=2.0)
    log.rename(tmp_path / "access.log.1")
    log.write_text(_line("/c", 401))  # a new file, shorter than the old offset
    assert tailer.poll(now=3.0) == 1
    assert events.tallies(start=2.5, end=3.0) == (1, 1)


def test_missing_file_and_bad_lines_are_reported(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    tailer = AccessLogTailer(log, events=EventLog(), from_start=True)
    assert tailer.poll(now=1.0) == 0
    assert tailer.missing
    log.write_text(_line("/a") + '{"msg": "json log"}\n')
    assert tailer.poll(now=2.0) == 1
    assert not tailer.missing
    assert tailer.problems == 1
    assert tailer.last_problem is not None
    assert "access.log:2: not a combined access-log line" in tailer.last_problem


def test_an_unreadable_log_is_reported_not_raised(tmp_path: Path) -> None:
    """A folder where the log should be sets ``unreadable``; a readable log clears it."""
    log = tmp_path / "access.log"
    log.mkdir()
    tailer = AccessLogTailer(log, events=EventLog(), from_start=True)
    assert tailer.poll(now=1.0) == 0
    assert tailer.unreadable is not None
    assert "access.log: cannot read" in tailer.unreadable
    assert not tailer.missing
    log.rmdir()
    log.write_text(_line("/a"))
    assert tailer.poll(now=2.0) == 1
    assert tailer.unreadable is None
