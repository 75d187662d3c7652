"""GitHub Actions integration: a Markdown job summary and ``::error::`` annotations.

Active only when ``GITHUB_ACTIONS=true`` (the runner sets it). The summary is
appended to the file named by ``$GITHUB_STEP_SUMMARY``; annotations are
workflow commands printed on their own line, escaped as the runner expects
(``%``, CR and LF in the message; also ``:`` and ``,`` in properties).
Used by ``rollguard gate`` and ``rollguard watch``::

    gh = GitHubActions.from_env()
    gh.error("2 critical vulnerabilities", title="rollguard gate")
    gh.summary("## rollguard gate: blocked\\n...")
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO


def _escape_data(text: str) -> str:
    # The runner's log renders ANSI escapes: control characters are shown, never acted on.
    from rollguard.cli.out import clean

    return clean(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def markdown_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes and newlines would break the row,
    and HTML (``<img onerror=...>`` from a trigger name) must stay text."""
    import html

    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ") or " "


class GitHubActions:
    """Writes annotations and the step summary when running under GitHub Actions."""

    def __init__(self, env: Mapping[str, str], *, stream: TextIO | None = None) -> None:
        self.enabled = env.get("GITHUB_ACTIONS", "").lower() == "true"
        summary = env.get("GITHUB_STEP_SUMMARY", "")
        self._summary_path = Path(summary) if summary else None
        self._stream = stream

    @classmethod
    def from_env(cls, *, stream: TextIO | None = None) -> GitHubActions:
        """From the process environment; ``stream`` defaults to stdout."""
        return cls(os.environ, stream=stream)

    def _command(self, name: str, message: str, properties: Mapping[str, str]) -> None:
        if not self.enabled:
            return
        props = ",".join(f"{key}={_escape_property(value)}" for key, value in properties.items())
        line = f"::{name}{' ' + props if props else ''}::{_escape_data(message)}"
        print(line, file=self._stream or sys.stdout, flush=True)

    def error(self, message: str, *, title: str = "rollguard") -> None:
        """An error annotation (red, on the run's summary page)."""
        self._command("error", message, {"title": title})

    def warning(self, message: str, *, title: str = "rollguard") -> None:
        """A warning annotation (yellow)."""
        self._command("warning", message, {"title": title})

    def summary(self, markdown: str) -> bool:
        """Append Markdown to the job summary; False when not under Actions or not written.

        A summary file that cannot be written is logged, never raised: it must not turn
        the command's exit code (blocked, rolled back) into a traceback.
        """
        if not self.enabled or self._summary_path is None:
            return False
        try:
            with self._summary_path.open("a", encoding="utf-8") as handle:
                handle.write(markdown.rstrip("\n") + "\n\n")
        except OSError as exc:
            logging.getLogger(__name__).warning(
                "cannot write the job summary %s: %s", self._summary_path, exc.strerror or exc
            )
            return False
        return True
