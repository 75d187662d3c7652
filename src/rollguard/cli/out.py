"""Everything the CLI prints to people goes through here.

Text from users' files, paths and values (a policy's line, a request path from
an access log, a trigger name, an error quoting input) is shown exactly as
text: never read as rich markup (``[red]``) or emoji codes (``:100:`` in
``p.yaml:100:1``), and with control characters (ANSI escapes, backspace,
bidirectional overrides) shown escaped (``\\x1b``), so it can neither restyle
nor rewrite the terminal. Our own styling is passed as styles, never as markup
in a string. When stdout is not a terminal (CI logs, pipes), nothing wraps at
80 columns. Echoed input is cut at :data:`ECHO_LIMIT` characters per line.
Machine output (JSON) does not come here: ``json.dumps`` escapes it already.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

#: Characters a terminal acts on: C0 (but tab and newline), DEL, C1, and the
#: invisible direction marks and overrides that reorder what is shown.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Longest echoed line (a 1 MB value in an error is cut, not printed whole).
ECHO_LIMIT = 500
#: Width used when stdout is not a terminal: lines are never folded for a log.
UNWRAPPED_WIDTH = 100_000
#: Named styles, so callers never write markup.
OK, WARN, BAD, DIM, BOLD = "green", "yellow", "bold red", "dim", "bold"


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: object, *, limit: int | None = None) -> str:
    """``value`` as text safe for a terminal; each line cut at ``limit`` characters."""
    text = CONTROL.sub(_escaped, str(value))
    if limit is None:
        return text
    return "\n".join(_cut(line, limit) for line in text.split("\n"))


def _cut(line: str, limit: int) -> str:
    if len(line) <= limit:
        return line
    return f"{line[:limit]}… ({len(line) - limit} more characters)"


class SafeConsole(Console):
    """A rich console that escapes control characters in whatever it renders.

    Strings are never markup or emoji here (``markup=False, emoji=False``); a
    control character that reached a :class:`~rich.text.Text` is escaped at the
    last step, segment by segment, so no path around :func:`clean` exists.
    """

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control is None and CONTROL.search(segment.text):
                yield Segment(CONTROL.sub(_escaped, segment.text), segment.style)
            else:
                yield segment


def console(*, stderr: bool = False, file: IO[str] | None = None) -> SafeConsole:
    """The console every command prints with (see the module's docstring)."""
    options = {"stderr": stderr, "file": file, "markup": False, "emoji": False, "highlight": False}
    shown = SafeConsole(**options)  # type: ignore[arg-type]
    if shown.is_terminal:
        return shown
    return SafeConsole(**options, width=UNWRAPPED_WIDTH, soft_wrap=True)  # type: ignore[arg-type]


def styled(text: object, style: str = "") -> Text:
    """One piece of text in one of our styles; ``text`` is never read as markup."""
    return Text(clean(text), style=style)


def line(*parts: object | tuple[object, str]) -> Text:
    """A line from plain parts and ``(text, style)`` pairs."""
    out = Text()
    for part in parts:
        if isinstance(part, tuple):
            out.append(clean(part[0]), style=part[1])
        else:
            out.append(clean(part))
    return out


def say(*parts: object | tuple[object, str], stderr: bool = False) -> None:
    """Print one line to stdout (or stderr) for people."""
    console(stderr=stderr).print(line(*parts))


def error(message: object) -> None:
    """``error: <message>`` on stderr: what every RollguardError looks like."""
    console(stderr=True).print(line(("error:", BAD), " ", clean(message, limit=ECHO_LIMIT)))


def warn(message: object) -> None:
    """``warning: <message>`` on stderr."""
    console(stderr=True).print(line(("warning:", WARN), " ", clean(message, limit=ECHO_LIMIT)))


def echo(text: object, *, stderr: bool = False) -> None:
    """Plain text without rich (long listings), still escaped."""
    stream = sys.stderr if stderr else sys.stdout
    stream.write(clean(text) + "\n")


def emit_json(
    value: object, *, indent: int | None = None, default: Callable[[Any], Any] | None = None
) -> None:
    """One JSON document on stdout for machines (ASCII only: nothing a terminal acts on)."""
    import json

    separators = None if indent else (",", ":")
    text = json.dumps(value, indent=indent, separators=separators, default=default)
    sys.stdout.write(text.replace("\x7f", "\\u007f") + "\n")
