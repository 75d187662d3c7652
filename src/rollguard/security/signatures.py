"""The attack signatures rollguard matches in access logs, and the matcher.

Each :class:`Signature` is a regular expression over one field of a request:
the request target (path and query, URL-decoded up to twice so ``%2527``
and ``%27`` both become ``'``; ``+`` read as a space) or the User-Agent.
They are written to fire on attacks, not on odd but honest URLs: ``union``
alone, ``select-a-plan``, ``O'Reilly``, ``;jsessionid=``, ``a..b.pdf`` or
a single ``../`` do not match (tests/security/test_signatures.py holds both
lists). The set, by category:

- ``sql_injection``: UNION SELECT, tautologies (``' or 1=1``, ``' or 'a'='a``),
  stacked DROP/DELETE/INSERT/UPDATE, time-based (``sleep(5)``,
  ``benchmark(``, ``waitfor delay``, ``pg_sleep``), ``information_schema``,
  quote followed by a comment (``'--``, ``'#``), ``into outfile``,
  ``load_file(``, ``extractvalue(``/``updatexml(``.
- ``path_traversal``: two or more ``../`` (or ``..\\``) in a row, ``../``
  towards a well-known file, ``/etc/passwd`` / ``/etc/shadow``,
  ``/proc/self/``, ``c:\\windows``, ``win.ini``, a NUL byte (``%00``).
- ``command_injection``: a shell separator (``;``, ``|``, ``&&``, newline)
  followed by a shell command and a word end (``;cat /etc``, ``|id``,
  ``&& whoami``), ``$(command``, a command in backticks, ``/bin/sh`` or
  ``/bin/bash``, and JNDI lookups (``${jndi:``, Log4Shell).
- ``scanner``: User-Agents of well-known scanners (sqlmap, Nikto, Nmap,
  masscan, zgrab, Nuclei, WPScan, DirBuster, gobuster, feroxbuster, ffuf,
  Acunetix, Nessus, OpenVAS, w3af, Arachni, ZmEu, Havij, fimap, Jorgee,
  Netsparker, Qualys). Ordinary clients (curl, python-requests, Go's
  http client, kube-probe, Prometheus) are not scanners.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote_plus

SHELL_COMMANDS = (
    "cat|id|whoami|uname|ls|pwd|wget|curl|nc|ncat|netcat|bash|sh|zsh|ping|nslookup|"
    "echo|chmod|rm|python|python3|perl|php|powershell|cmd"
)


@dataclass(frozen=True)
class Signature:
    """One named pattern over the request target or the User-Agent."""

    name: str
    category: str  # sql_injection, path_traversal, command_injection, scanner
    field: str  # "target" or "user_agent"
    pattern: re.Pattern[str]  # matched against the lower-cased field
    hints: tuple[str, ...] = ()  # when given, one must occur for the pattern to be tried


@dataclass(frozen=True)
class Match:
    """Which signature fired on which request."""

    signature: str
    category: str
    excerpt: str  # the matched text, at most 80 characters


def _sig(
    name: str, category: str, pattern: str, field: str = "target", hints: tuple[str, ...] = ()
) -> Signature:
    # Fields are lower-cased once per request: much cheaper than re.IGNORECASE on every pattern.
    return Signature(name, category, field, re.compile(pattern), hints)


#: Scanner User-Agent words; a plain substring test first keeps benign requests cheap.
SCANNER_WORDS = (
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "wpscan",
    "dirbuster",
    "gobuster",
    "feroxbuster",
    "fuzz faster u fool",
    "acunetix",
    "nessus",
    "openvas",
    "w3af",
    "arachni",
    "zmeu",
    "havij",
    "fimap",
    "jorgee",
    "netsparker",
    "qualys",
    "dirb",
    "morfeus",
)


SIGNATURES: tuple[Signature, ...] = (
    # SQL injection
    _sig("sqli-union-select", "sql_injection", r"\bunion\b(?:\s|/\*.*?\*/)+(?:all\s+)?select\b"),
    _sig(
        "sqli-tautology",
        "sql_injection",
        r"['\"`)]\s*(?:or|and|\|\||&&)\s*(?:'[^']*'|\"[^\"]*\"|\d+)\s*(?:=|like|<|>)\s*"
        r"(?:'[^']*|\"[^\"]*|\d+)",
    ),
    _sig(
        "sqli-stacked",
        "sql_injection",
        r";\s*(?:drop|truncate|alter|create)\s+(?:table|database)\b"
        r"|;\s*(?:delete\s+from|insert\s+into|update\s+\w+\s+set)\b",
    ),
    _sig(
        "sqli-time",
        "sql_injection",
        r"\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d|\bwaitfor\s+delay\s+'",
    ),
    _sig("sqli-schema", "sql_injection", r"\binformation_schema\b|\bsysobjects\b|\bpg_catalog\."),
    _sig("sqli-comment", "sql_injection", r"['\"]\s*(?:--|#|/\*)"),
    _sig(
        "sqli-file",
        "sql_injection",
        r"\binto\s+(?:out|dump)file\b|\bload_file\s*\(|\b(?:extractvalue|updatexml)\s*\(",
    ),
    # Path traversal
    _sig("traversal-dotdot", "path_traversal", r"(?:\.\.[/\\]){2,}"),
    _sig(
        "traversal-known-file",
        "path_traversal",
        r"\.\.[/\\].*(?:passwd|shadow|win\.ini|boot\.ini|\.env\b|\.git/|web\.config|id_rsa)",
    ),
    _sig("traversal-etc", "path_traversal", r"/etc/(?:passwd|shadow|hosts|group)\b"),
    _sig("traversal-proc", "path_traversal", r"/proc/self/(?:environ|cmdline|fd)"),
    _sig("traversal-windows", "path_traversal", r"\bc:[/\\]+windows\b|\bwin\.ini\b|\bboot\.ini\b"),
    _sig("traversal-nul", "path_traversal", r"\x00"),
    # Command injection
    _sig(
        "cmd-separator",
        "command_injection",
        rf"(?:;|\||&&|\n)\s*(?:/(?:usr/)?bin/)?(?:{SHELL_COMMANDS})(?=$|[\s;|&<>'\"`)])",
    ),
    _sig(
        "cmd-substitution",
        "command_injection",
        rf"\$\(\s*(?:{SHELL_COMMANDS})\b|`\s*(?:{SHELL_COMMANDS})\b[^`]*`",
    ),
    _sig("cmd-shell-path", "command_injection", r"/bin/(?:ba|z|da)?sh\b"),
    _sig("cmd-jndi", "command_injection", r"\$\{\s*jndi\s*:"),
    # Scanners, by User-Agent
    _sig(
        "scanner-user-agent",
        "scanner",
        r"sqlmap|nikto|\bnmap\b|nmap scripting engine|masscan|zgrab|nuclei|wpscan|dirbuster|"
        r"gobuster|feroxbuster|fuzz faster u fool|acunetix|nessus|openvas|\bw3af|arachni|"
        r"zmeu|havij|fimap|jorgee|netsparker|qualys|\bdirb\b|morfeus",
        field="user_agent",
        hints=SCANNER_WORDS,
    ),
)


#: (target, User-Agent, category) requests that fire, one or more per category: what the
#: ``attack`` demo sends to the canary, and a smoke test for any deployed log pipeline.
SAMPLE_ATTACKS: tuple[tuple[str, str, str], ...] = (
    ("/items?id=1%27%20OR%20%271%27%3D%271", "Mozilla/5.0", "sql_injection"),
    (
        "/items?id=1%20UNION%20SELECT%20username,password%20FROM%20users",
        "Mozilla/5.0",
        "sql_injection",
    ),
    ("/download?file=../../../../etc/passwd", "Mozilla/5.0", "path_traversal"),
    ("/ping?host=127.0.0.1;cat%20/etc/hosts", "Mozilla/5.0", "command_injection"),
    ("/search?q=%24%7Bjndi:ldap://127.0.0.1/a%7D", "Mozilla/5.0", "command_injection"),
    ("/", "sqlmap/1.7.2#stable (https://sqlmap.org)", "scanner"),
    ("/", "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000003)", "scanner"),
)


def decode_target(target: str) -> str:
    """URL-decode up to twice (``%2527`` → ``%27`` → ``'``); ``+`` is a space."""
    decoded = target
    for _ in range(2):
        once = unquote_plus(decoded, errors="replace")
        if once == decoded:
            break
        decoded = once
    return decoded


def match_request(
    target: str, user_agent: str = "", *, signatures: Iterable[Signature] = SIGNATURES
) -> list[Match]:
    """Every signature that fires on one request (empty for a benign one)."""
    fields = {"target": decode_target(target).lower(), "user_agent": user_agent.lower()}
    found = []
    for signature in signatures:
        text = fields[signature.field]
        if signature.hints and not any(hint in text for hint in signature.hints):
            continue
        hit = signature.pattern.search(text)
        if hit:
            found.append(Match(signature.name, signature.category, hit.group(0)[:80]))
    return found
