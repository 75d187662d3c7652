"""Parsing access-log lines, and refusing lines in another format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rollguard.security.accesslog import LogFormatError, parse_line

NGINX = (
    '203.0.113.9 - - [27/Nov/2026:09:42:28 +0000] "GET /x?id=1%27 HTTP/1.1" 403 153 '
    '"-" "sqlmap/1.7.2#stable (https://sqlmap.org)"'
)
# Real HAProxy 2.6 `option httplog` output with a captured User-Agent (tests/security
# test_haproxy_log.py produces these from a running haproxy).
HAPROXY = (
    "127.0.0.1:56060 [27/Nov/2026:09:42:28.053] web web/<NOSRV> 0/-1/-1/-1/0 403 192 - - "
    'PR-- 1/1/0/0/0 0/0 {curl/7.88.1} "GET /admin HTTP/1.1"'
)


def test_combined_line() -> None:
    request = parse_line(NGINX)
    assert (request.client, request.method, request.target) == ("203.0.113.9", "GET", "/x?id=1%27")
    assert request.status == 403
    assert request.unauthorized
    assert request.user_agent.startswith("sqlmap")
    assert request.time == datetime(2026, 11, 27, 9, 42, 28, tzinfo=UTC).timestamp()


def test_combined_without_referer_and_agent() -> None:
    request = parse_line('10.0.0.1 - bob [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 401 0')
    assert request.status == 401
    assert request.user_agent == ""


def test_escaped_quotes_in_request() -> None:
    line = '10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a?q=\\x22x HTTP/1.1" 200 5 "-" "ua"'
    assert parse_line(line).target == '/a?q="x'


def test_haproxy_line_with_syslog_prefix() -> None:
    request = parse_line("Nov 27 09:42:28 host haproxy[12]: " + HAPROXY, "haproxy")
    assert (request.status, request.target, request.user_agent) == (403, "/admin", "curl/7.88.1")


def test_haproxy_aborted_request_has_no_status() -> None:
    line = HAPROXY.replace(" 403 192 ", " -1 0 ")
    assert parse_line(line, "haproxy").status is None


@pytest.mark.parametrize(
    ("line", "fmt"),
    [
        ('{"time": "2026-11-27T09:42:28Z", "status": 200}', "combined"),
        ("2026-11-27 09:42:28 GET /index.html 200", "combined"),
        (HAPROXY, "combined"),
        (NGINX, "haproxy"),
    ],
)
def test_line_in_another_format_is_one_clear_error(line: str, fmt: str) -> None:
    with pytest.raises(LogFormatError, match=rf"access\.log:7: not a {fmt} access-log line"):
        parse_line(line, fmt, where="access.log:7")  # type: ignore[arg-type]
