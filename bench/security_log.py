"""Access-log throughput: how many log lines per second the tailer parses and matches.

    python bench/security_log.py

Writes a 200,000-line NGINX combined log (1 % attacks, 5 % 401/403) to a
temporary folder and times ``AccessLogTailer.poll`` reading it from the top
(parse + all signatures + tallies), then the parser alone and the matcher
alone. A busy canary logging 5,000 requests/s needs 5,000 lines/s per core;
the tailer polls once per analysis interval (5 s by default).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rollguard.security.accesslog import parse_line  # noqa: E402
from rollguard.security.events import EventLog  # noqa: E402
from rollguard.security.signatures import match_request  # noqa: E402
from rollguard.security.tailer import AccessLogTailer  # noqa: E402

LINES = 200_000
BENIGN = [
    "/api/v1/orders?page=3&sort=created_at",
    "/static/app.3f9a1c.min.js",
    "/search?q=union+station+parking",
    "/products/42/reviews",
    "/health",
]
ATTACKS = [
    "/items?id=1%27%20OR%201=1--",
    "/download?file=../../../../etc/passwd",
    "/ping?host=127.0.0.1;cat%20/etc/hosts",
]


def _log_text() -> str:
    stamp = "[27/Nov/2026:09:42:28 +0000]"
    lines = []
    for number in range(LINES):
        if number % 100 == 0:
            target = ATTACKS[number // 100 % len(ATTACKS)]
        else:
            target = BENIGN[number % len(BENIGN)]
        status = 403 if number % 20 == 0 else 200
        lines.append(
            f'10.0.{number % 256}.{number % 200} - - {stamp} "GET {target} HTTP/1.1" {status} '
            f'512 "-" "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"\n'
        )
    return "".join(lines)


def _best_of(runs: int, action: object) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    text = _log_text()
    sample = text.splitlines()[:20_000]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "access.log"
        path.write_text(text)

        def tail_all() -> None:
            tailer = AccessLogTailer(path, events=EventLog(), from_start=True)
            while tailer.poll(now=1.0):
                pass

        tail_seconds = _best_of(3, tail_all)
    parse_seconds = _best_of(3, lambda: [parse_line(line) for line in sample])
    requests = [parse_line(line) for line in sample]
    match_seconds = _best_of(3, lambda: [match_request(r.target, r.user_agent) for r in requests])
    print(f"{'stage':<34}{'lines/s':>12}")
    print(f"{'tailer poll (parse+match+tally)':<34}{LINES / tail_seconds:>12,.0f}")
    print(f"{'parse_line only':<34}{len(sample) / parse_seconds:>12,.0f}")
    print(f"{'match_request only':<34}{len(sample) / match_seconds:>12,.0f}")
    per_line_us = 1e6 * tail_seconds / LINES
    print(f"tailer cost per line: {per_line_us:.1f} µs ({LINES:,} lines, best of 3)")


if __name__ == "__main__":
    main()
