"""``/metrics`` in the Prometheus text format, fast enough for thousands of series.

prometheus_client's ``generate_latest`` rebuilds every sample on every scrape:
a dict of labels, sorted, each name validated and escaped, the value
formatted. With 1,000 deployments (about 11,000 series) that is 130 ms of
CPU on an idle machine and most of a second under load, all while holding
the GIL the event loop needs. :class:`Exposition` writes the same bytes but
keeps, per series, the line it last wrote with the value object it was
written for: a series whose value did not change (most of them, between two
scrapes a second apart) costs a dictionary lookup.

Only labelled counters and gauges take this path; anything else (histograms,
unlabelled metrics, counters while ``_created`` series are enabled, a
registry with ``target_info``) is rendered by ``generate_latest`` itself, so
the output is byte for byte what prometheus_client would send.
``tests/server/test_serve_exposition.py`` compares the two.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client import metrics as client_metrics
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

#: Per series: the value object last written, the line written for it, and the
#: line's start (name and labels), which stays the same while the series lives.
_Lines = dict[tuple[str, ...], tuple[float, str, str]]


class _Only:
    """One collector as a registry, for ``generate_latest``."""

    def __init__(self, collector: Collector) -> None:
        self._collector = collector

    def collect(self) -> Iterable[Any]:
        return self._collector.collect()


def _number(value: float) -> str:
    """A value as prometheus_client writes it (``+Inf``, ``NaN``, Go-style exponents)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class Exposition:
    """Renders a registry as ``generate_latest`` does, reusing unchanged series' lines."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._lines: dict[Collector, _Lines] = {}
        self._lock = threading.Lock()  # renders may come from several threads

    def render(self) -> bytes:
        """The exposition, identical to ``generate_latest(registry)``."""
        collectors = self._collectors()
        if collectors is None:
            return generate_latest(self.registry)
        with self._lock:
            out: list[str] = []
            kept: dict[Collector, _Lines] = {}
            for collector in collectors:
                if self._fast(collector):
                    kept[collector] = self._labelled(collector, out)
                else:
                    out.append(generate_latest(_Only(collector)).decode("utf-8"))
            self._lines = kept  # series and metrics gone since the last render are dropped
            return "".join(out).encode("utf-8")

    def _collectors(self) -> list[Collector] | None:
        """The registry's collectors in its order; None when only its own render will do."""
        registry: Any = self.registry
        try:
            if registry._target_info is not None:
                return None
            with registry._lock:
                return list(registry._collector_to_names)
        except AttributeError:  # a prometheus_client that keeps them otherwise
            return None

    @staticmethod
    def _fast(collector: Collector) -> bool:
        if type(collector) not in (Counter, Gauge):
            return False
        metric: Any = collector
        if not getattr(metric, "_labelnames", ()) or not hasattr(metric, "_metrics"):
            return False
        if isinstance(collector, Counter) and getattr(client_metrics, "_use_created", True):
            return False  # generate_latest adds a _created gauge after the counter
        return bool(_METRIC_NAME.fullmatch(metric._name)) and all(
            _LABEL_NAME.fullmatch(label) for label in metric._labelnames
        )

    def _labelled(self, collector: Collector, out: list[str]) -> _Lines:
        metric: Any = collector
        counter = isinstance(collector, Counter)
        name = metric._name + ("_total" if counter else "")
        help_text = metric._documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {metric._type}\n")
        # generate_latest sorts a sample's labels by name.
        order = sorted(range(len(metric._labelnames)), key=lambda i: metric._labelnames[i])
        names = [metric._labelnames[i] for i in order]
        with metric._lock:
            children = metric._metrics.copy()
        lines = self._lines.get(collector)
        if lines is None or len(lines) > len(children):  # new, or series were removed
            lines = (
                {values: lines[values] for values in children if values in lines} if lines else {}
            )
        # Hits allocate nothing: a render that keeps thousands of new objects alive
        # sets off the garbage collector's full passes over the whole process.
        for values, child in children.items():
            value = child._value.get()
            seen = lines.get(values)
            if seen is not None and seen[0] is value:
                out.append(seen[1])
                continue
            if seen is None:
                labels = ",".join(
                    f'{label}="{_escape_value(values[i])}"'
                    for label, i in zip(names, order, strict=True)
                )
                start = f"{name}{{{labels}}} "
            else:
                start = seen[2]
            line = f"{start}{_number(value)}\n"
            lines[values] = (value, line, start)
            out.append(line)
        return lines
