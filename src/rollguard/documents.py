"""Read untrusted YAML and JSON within a size and a depth limit.

Every document rollguard reads from outside — policies, ignore files,
baselines, load-test and vulnerability reports, Prometheus answers, Falco
events — goes through here, so a hostile one becomes one located
:class:`DocumentError` (exit 2), never a ``RecursionError``, an exhausted
memory or a traceback:

- **size**: a body over its limit is refused before it is parsed (files are
  read within the same limits by :mod:`rollguard.textfile`);
- **depth**: YAML events are counted before ruamel's recursive composer runs;
  JSON's C decoder stops itself with ``RecursionError``, which becomes an
  error; then the parsed value, YAML aliases included, must be at most
  :data:`MAX_DEPTH` containers deep — an alias that contains itself is
  infinitely deep and refused the same way;
- **expansion**: YAML aliases may repeat a node many times ("billion laughs");
  the value with every alias expanded must hold at most :data:`MAX_NODES`
  containers;
- **integers** longer than 19 digits are refused: ``float()`` of one raises
  ``OverflowError`` and Python refuses to parse 4,300 digits at all.

NaN and Infinity, which Python's ``json`` reads, are left to each reader: most
say which field is not a finite number, which is the better message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.reader import ReaderError

from rollguard.errors import InputError

#: Containers inside containers; real policies and reports stay under 15.
MAX_DEPTH = 64
#: Containers in a YAML document once its aliases are expanded.
MAX_NODES = 200_000
#: A policy, ignore file or baseline (real ones are a few kilobytes).
MAX_CONFIG_BYTES = 1024 * 1024
#: A report or baseline file (Trivy's report of a large image is tens of megabytes).
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: An answer from a metrics source (as the scrape provider's limit).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_MAX_INT_DIGITS = 19
_BRACKET = re.compile(r"[\[\]{}]")
_BRACKET_SLACK = 4


class DocumentError(InputError):
    """A document that cannot be read, with where (``line``, ``column``, 1-based) if known."""

    def __init__(
        self, source: str, reason: str, *, line: int | None = None, column: int | None = None
    ) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        self.column = column
        where = source if line is None else f"{source}:{line}:{column or 1}"
        super().__init__(f"{where}: {reason}")


def load_json(
    text: str | bytes, *, source: str, what: str = "document", max_bytes: int = MAX_REPORT_BYTES
) -> Any:
    """Parse JSON text within the limits; empty text is an error too."""
    if len(text) > max_bytes:
        raise DocumentError(source, f"the {what} is larger than {size_text(max_bytes)}; refused")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(source, f"the {what} is not UTF-8 text ({exc.reason})") from None
    if not text.strip():
        raise DocumentError(source, f"the {what} is empty")
    try:
        value = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        # Running out of input (at the end, or inside a string) means a cut-off file.
        ran_out = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        hint = " (the file looks truncated)" if ran_out else ""
        raise DocumentError(
            source, f"not valid JSON: {exc.msg}{hint}", line=exc.lineno, column=exc.colno
        ) from None
    except RecursionError:
        raise DocumentError(source, _too_deep(what)) from None
    except _HugeInteger as exc:
        raise DocumentError(source, str(exc)) from None
    _check_shape(value, source, what, max_nodes=None)
    return value


def load_yaml(
    text: str, *, source: str, what: str = "document", max_bytes: int = MAX_CONFIG_BYTES
) -> Any:
    """Parse YAML (round-trip: mappings keep their keys' lines) within the limits."""
    if len(text.encode("utf-8", errors="surrogatepass")) > max_bytes:
        raise DocumentError(source, f"the {what} is larger than {size_text(max_bytes)}; refused")
    _check_bracket_depth(text, source, what)
    yaml = YAML(typ="rt")
    try:
        _check_event_depth(yaml.parse(text), source, what)
        value = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise DocumentError(
            source, f"not valid YAML: {message}", line=line, column=column
        ) from None
    except ReaderError as exc:  # a character YAML does not allow (control characters, NUL)
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        reason = f"not valid YAML: character U+{code:04X} is not allowed"
        raise DocumentError(source, reason, line=line, column=column) from None
    except YAMLError as exc:
        raise DocumentError(source, f"not valid YAML: {' '.join(str(exc).split())}") from None
    _check_shape(value, source, what, max_nodes=MAX_NODES)
    return value


def excerpt(value: object, limit: int = 60) -> str:
    """Text from a document, fit for a one-line message: control characters and line
    breaks escaped (``\\n``, ``\\x1b``), at most ``limit`` characters."""
    text = str(value)
    if not text.isprintable():
        text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _HugeInteger(ValueError):
    pass


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        shown = digits if len(digits) <= 30 else digits[:24] + "..."
        raise _HugeInteger(f"the integer {shown} has more than {_MAX_INT_DIGITS} digits; refused")
    return int(digits)


def _check_bracket_depth(text: str, source: str, what: str) -> None:
    """Refuse flow brackets nested far past the limit before ruamel's scanner sees them.

    The scanner reads a whole flow collection ahead (it may turn out to be a key), in
    time that grows with the square of its depth: 3,000 brackets took seconds. Quotes
    are not parsed here, so the bound has room for brackets inside strings; the exact
    depth is checked on the events afterwards.
    """
    depth = 0
    for found in _BRACKET.finditer(text):
        depth += 1 if found.group() in "[{" else -1
        if depth > _BRACKET_SLACK * MAX_DEPTH:
            line = text.count("\n", 0, found.start()) + 1
            column = found.start() - text.rfind("\n", 0, found.start())
            raise DocumentError(source, _too_deep(what), line=line, column=column)


def _check_event_depth(events: Iterable[Any], source: str, what: str) -> None:
    """Count nesting in the event stream, before anything recursive runs."""
    depth = 0
    for event in events:
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise DocumentError(
                    source, _too_deep(what), line=mark.line + 1, column=mark.column + 1
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _check_shape(value: Any, source: str, what: str, *, max_nodes: int | None) -> None:
    """Walk the value level by level (no recursion): depth, and expanded size for YAML.

    Each level keeps every distinct container once with how many times it is
    reached, so shared (aliased) nodes cost their multiplicity in the count
    but not in the walk, and a cycle simply goes deeper than the limit.
    """
    level: dict[int, tuple[Any, int]] = {}
    if isinstance(value, dict | list):
        level[id(value)] = (value, 1)
    depth, expanded = 0, 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise DocumentError(source, _too_deep(what))
        following: dict[int, tuple[Any, int]] = {}
        for node, times in level.values():
            expanded += times
            if max_nodes is not None and expanded > max_nodes:
                raise DocumentError(
                    source,
                    f"the {what} expands to more than {max_nodes:,} mappings and lists "
                    "(aliases repeated inside aliases?); refused",
                )
            children = node.values() if isinstance(node, dict) else node
            for child in children:
                if isinstance(child, dict | list):
                    _, seen = following.get(id(child), (child, 0))
                    following[id(child)] = (child, seen + times)
        level = following


def _too_deep(what: str) -> str:
    return f"the {what} nests mappings or lists more than {MAX_DEPTH} deep; refused"


def size_text(limit: int) -> str:
    """A limit for messages: ``16 MiB``, ``1,024 bytes``."""
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit:,} bytes"
