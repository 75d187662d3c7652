"""Parse one scrape body (Prometheus text 0.0.4 or OpenMetrics) into plain samples.

prometheus_client's parsers do the reading; this module decides which one
applies (by Content-Type, falling back to the other), refuses bodies that are
plainly not an exposition (HTML error pages, JSON), and keeps only the sample
names the caller asks for so a long ring of scrapes stays small.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

#: Sorted ``(label, value)`` pairs: one series' identity within a sample name.
Labels = tuple[tuple[str, str], ...]

#: Sample-name suffixes a family of each type may expose.
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("", "_total", "_created"),
    "histogram": ("", "_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("", "_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
}

_REFUSED_TYPES = (
    "text/html",
    "application/json",
    "application/xml",
    "text/xml",
    "application/vnd.google.protobuf",  # the binary format; we ask for text
)


class ExpositionError(ValueError):
    """The body is not a Prometheus text exposition; the message says why."""


@dataclass(frozen=True)
class Exposition:
    """The samples of one scrape, by sample name, and every name the target declares.

    ``declared`` includes names of families that have no samples yet (a labelled
    counter before its first increment), so "declared but empty" (a zero) can
    be told from "not exposed at all" (no data).
    """

    samples: Mapping[str, Mapping[Labels, float]] = field(default_factory=dict)
    declared: frozenset[str] = frozenset()

    def series(self, name: str) -> Mapping[Labels, float]:
        """Every series of one sample name (empty when there is none)."""
        return self.samples.get(name, {})

    def declares(self, name: str) -> bool:
        """Whether the target exposes (or at least declares) ``name``."""
        return name in self.declared


def parse(body: str, *, content_type: str = "", keep: Collection[str] | None = None) -> Exposition:
    """Parse ``body``; keep only sample names in ``keep`` (all when ``None``).

    Raises :class:`ExpositionError` for anything that is not an exposition.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _REFUSED_TYPES:
        raise ExpositionError(f"the response is {media_type}")
    head = body.lstrip()[:200].lower()
    if head.startswith("<"):
        raise ExpositionError(f"the body looks like HTML or XML: {_excerpt(body)!r}")
    if head.startswith(("{", "[")):
        raise ExpositionError(f"the body looks like JSON: {_excerpt(body)!r}")
    openmetrics = media_type == "application/openmetrics-text"
    try:
        families = _families(body, openmetrics=openmetrics)
    except ExpositionError as first:
        # Files and sloppy servers mislabel the format (Prometheus' own test data
        # ends 0.0.4 text with "# EOF"): the other parser gets one chance.
        try:
            families = _families(body, openmetrics=not openmetrics)
        except ExpositionError:
            raise first from None
    return _collect(families, keep)


def _families(body: str, *, openmetrics: bool) -> list[Metric]:
    try:
        if openmetrics:
            # prometheus_client leaves the OpenMetrics parser unannotated.
            parsed: Iterable[Metric] = openmetrics_parser.text_string_to_metric_families(body)  # type: ignore[no-untyped-call]
        else:
            parsed = text_string_to_metric_families(body)
        return list(parsed)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise ExpositionError(str(exc) or type(exc).__name__) from exc


def _collect(families: Iterable[Metric], keep: Collection[str] | None) -> Exposition:
    samples: dict[str, dict[Labels, float]] = {}
    declared: set[str] = set()
    for family in families:
        for suffix in _SUFFIXES.get(family.type, ("",)):
            declared.add(family.name + suffix)
        for sample in family.samples:
            declared.add(sample.name)
            if keep is not None and sample.name not in keep:
                continue
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = float(sample.value)
    if keep is not None:
        declared &= set(keep)
    return Exposition(samples=samples, declared=frozenset(declared))


def _excerpt(body: str, limit: int = 60) -> str:
    text = " ".join(body.split())
    return text if len(text) <= limit else text[:limit] + "..."
