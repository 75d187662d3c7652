"""Read any supported report file, recognising its format from its content.

File names lie (``report.json`` may be Trivy, Grype or SARIF), so the format
is detected from the document's shape: SARIF has ``runs`` and a version,
Grype has ``matches`` and ``source``, Trivy has ``Results`` and
``SchemaVersion``. Anything else is refused with what was found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rollguard import documents
from rollguard.errors import InputError
from rollguard.scanners import grype, sarif, trivy
from rollguard.scanners.findings import Report
from rollguard.textfile import read_text

#: How each known-but-unsupported document announces itself, and what to do instead.
_UNSUPPORTED = {
    "bomFormat": "a CycloneDX BOM; pass the scanner's JSON (trivy --format json, grype -o json) "
    "or SARIF instead",
    "spdxVersion": "an SPDX SBOM (packages, no vulnerabilities); scan it with trivy or grype "
    "and pass their JSON or SARIF",
}

#: (recognise, parse, name) per format, SARIF first: its "runs" is the least ambiguous key.
_PARSERS: tuple[tuple[Callable[[Any], bool], Callable[[Any, str], Report], str], ...] = (
    (sarif.looks_like, sarif.parse, "SARIF"),
    (grype.looks_like, grype.parse, "Grype JSON"),
    (trivy.looks_like, trivy.parse, "Trivy JSON"),
)


def load_report(path: str | Path) -> Report:
    """Parse one report file; raise :class:`InputError` with the file and what is wrong."""
    return parse_report(read_text(path, "report"), source=str(path))


def load_reports(paths: Iterable[str | Path]) -> list[Report]:
    """Every report, in the order given."""
    return [load_report(path) for path in paths]


def parse_report(raw: str, *, source: str = "<report>") -> Report:
    """Parse report text held in memory (tests, uploads)."""
    if not raw.strip():
        raise InputError(f"{source}: the report is empty (did the scanner fail?)")
    document: Any = documents.load_json(raw, source=source, what="report")
    for looks_like, parse, label in _PARSERS:
        if looks_like(document):
            try:
                return parse(document, source)
            except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
                # The parsers name the usual mistakes field by field; a value of the wrong
                # type deeper down still gets one message and exit 2, never a traceback.
                raise InputError(
                    f"{source}: not a valid {label} report: a field has an unexpected type ({exc})"
                ) from None
    raise InputError(f"{source}: {_unknown(document)}")


def _unknown(document: Any) -> str:
    expected = (
        "expected Trivy JSON (Results, SchemaVersion), Grype JSON (matches, source) "
        "or SARIF 2.1.0 (runs, version)"
    )
    if isinstance(document, dict):
        for key, what in _UNSUPPORTED.items():
            if key in document:
                return f"not a vulnerability report rollguard reads: this is {what}"
        keys = ", ".join(documents.excerpt(key, 40) for key in sorted(map(str, document))[:8])
        keys = keys or "none"
        return f"unknown report format (top-level keys: {keys}); {expected}"
    return f"unknown report format (a JSON {type(document).__name__}); {expected}"
