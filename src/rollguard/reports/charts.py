"""Small inline SVG charts: no network, no JavaScript, no plotting library.

Each bar carries ``data-label`` and ``data-value`` attributes and a ``<title>``
tooltip, so a browser shows the numbers and a test can read them back. The
value axis counts rollbacks, so its ticks are whole numbers (``data-tick``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from html import escape

WIDTH, HEIGHT = 640, 220
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 44, 36, 24
#: At most this many value-axis ticks above zero, and labels under the bars.
MAX_TICKS, MAX_AXIS_LABELS = 5, 8


def bar_chart(
    chart_id: str, title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = ""
) -> str:
    """A vertical bar chart of counts as an ``<svg>`` element."""
    step, scale_max = count_ticks(max(values, default=0.0))
    plot_w = WIDTH - MARGIN_LEFT - 8
    plot_h = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    slot = plot_w / max(1, len(values))
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{MARGIN_LEFT}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for tick in range(0, scale_max + 1, step):
        y = MARGIN_TOP + plot_h - plot_h * tick / scale_max
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{MARGIN_LEFT - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end" '
            f'data-tick="{tick}">{tick}</text>'
        )
    every = max(1, math.ceil(len(labels) / MAX_AXIS_LABELS))
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot_h * value / scale_max
        x = MARGIN_LEFT + index * slot + slot * 0.15
        y = MARGIN_TOP + plot_h - height
        shown = f"{label}: {value:g}{unit}"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{height:.1f}" data-label="{escape(label)}" data-value="{value:g}">'
            f"<title>{escape(shown)}</title></rect>"
        )
        if index % every == 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 14}" '
                f'class="tick" text-anchor="middle">{escape(_axis_label(label))}</text>'
            )
    if not values:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def count_ticks(top: float) -> tuple[int, int]:
    """A whole-number tick step and axis top at or above ``top`` (counts are integers)."""
    ceiling = max(1, math.ceil(top))
    step = 1
    while math.ceil(ceiling / step) > MAX_TICKS:
        step = _next_round(step)
    return step, step * math.ceil(ceiling / step)


def per_day(counts: dict[str, int], *, start: str, end: str) -> tuple[list[str], list[float]]:
    """Every day from ``start`` to ``end`` (ISO dates), zero where nothing happened."""
    first, last = date.fromisoformat(start[:10]), date.fromisoformat(end[:10])
    days = max(0, (last - first).days)
    labels = [(first + timedelta(days=n)).isoformat() for n in range(days + 1)]
    return labels, [float(counts.get(label, 0)) for label in labels]


def histogram(values: Sequence[float], *, bins: int = 10) -> tuple[list[str], list[float]]:
    """Equal-width bins spanning ``values`` (not from zero), labelled ``low-high s``;
    a spread over :data:`WIDE_RATIO` gets bins growing on the 1-3-10 ladder instead.

    The width is a round number chosen from the data's spread, and each edge is
    printed with as many decimals as the width needs, so no two labels read alike.
    """
    if not values:
        return [], []
    low, high = min(values), max(values)
    if low > 0 and high / low >= WIDE_RATIO:
        return _ladder_histogram(values, low, high)
    spread = high - low if high > low else abs(low) or float(bins)  # one value: a bin around it
    width = _round_width(spread / bins)
    first = math.floor(low / width) * width
    count = max(1, min(bins + 1, math.floor((high - first) / width + 1e-9) + 1))
    counts = [0.0] * count
    for value in values:
        counts[min(count - 1, int((value - first) / width + 1e-9))] += 1
    decimals = max(0, -math.floor(math.log10(width) + 1e-9))
    edges = [first + width * n for n in range(count + 1)]
    return [f"{edges[n]:.{decimals}f}-{edges[n + 1]:.{decimals}f}s" for n in range(count)], counts


#: A spread this wide (largest / smallest) gets bins growing by about 3x: with equal widths,
#: 0.4 s and 300 s would share the first bin of a chart reaching 3,000 s.
WIDE_RATIO = 100.0


def _ladder_histogram(
    values: Sequence[float], low: float, high: float
) -> tuple[list[str], list[float]]:
    """Bins with edges on the 1-3-10 ladder (0.3-1s, 1-3s, 3-10s, ...) from ``low`` to ``high``."""
    power = math.floor(math.log10(low))
    mantissa = 3 if float(f"3e{power}") <= low else 1
    edges = [float(f"{mantissa}e{power}")]
    while edges[-1] <= high:
        mantissa, power = (3, power) if mantissa == 1 else (1, power + 1)
        edges.append(float(f"{mantissa}e{power}"))
    counts = [0.0] * (len(edges) - 1)
    for value in values:
        counts[max(n for n in range(len(counts)) if edges[n] <= value)] += 1
    return [f"{edges[n]:g}-{edges[n + 1]:g}s" for n in range(len(counts))], counts


def _round_width(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten at or above ``value``."""
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        if step * magnitude >= value * (1 - 1e-9):
            return step * magnitude
    return 10 * magnitude


def _next_round(step: int) -> int:
    """1, 2, 5, 10, 20, 50, ...: the next whole-number tick step."""
    magnitude = int(10 ** (len(str(step)) - 1))
    lead = step // magnitude
    return {1: 2, 2: 5}.get(lead, 10) * magnitude


def _axis_label(label: str) -> str:
    """A day's label under its bar without the year (the title and period give it)."""
    if len(label) == 10 and label[4] == "-" and label[7] == "-":
        return label[5:]
    return label


def why_chart(chart_id: str, why: Mapping[str, object]) -> str:
    """Why one rollback fired: the canary's value (and the reference) against the limit.

    A sequential trigger is drawn as its e-value against 1/alpha, on a log scale.
    """
    statistic = why.get("statistic")
    sequential = why.get("method") == "sequential" and isinstance(statistic, Mapping)
    if sequential and isinstance(statistic, Mapping):
        bars = [("e-value", _number(statistic.get("e_value")))]
        limit, unit, name = _number(statistic.get("threshold")), "", "1/alpha"
    else:
        unit = _unit(str(why.get("signal", "")))
        bars = [("canary", _number(why.get("value")))]
        if why.get("reference_source"):
            bars.append((str(why["reference_source"]), _number(why.get("reference"))))
        limit, name = _number(why.get("limit")), "limit"
    shown = [(label, value) for label, value in bars if value is not None]
    top = max([value for _, value in shown] + ([limit] if limit is not None else []) + [0.0])

    def scale(value: float) -> float:
        if sequential:  # e-values span many orders of magnitude
            return math.log10(max(value, 1.0)) / math.log10(max(top, 10.0))
        return value / top if top > 0 else 0.0

    width, left, row = 480, 86, 22
    plot_w = width - left - 90
    height = row * len(shown) + 30
    title = f"{why.get('trigger', '')}: {why.get('signal', '')}"
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart why" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
    ]
    for index, (label, value) in enumerate(shown):
        y = 6 + index * row
        over = limit is not None and value > limit
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" class="tick" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect class="bar{" over" if over else ""}" x="{left}" y="{y + 3}" '
            f'width="{plot_w * scale(value):.1f}" height="{row - 8}" data-label="{escape(label)}" '
            f'data-value="{value:g}"><title>{escape(label)}: {value:.4g}{unit}</title></rect>'
            f'<text x="{left + plot_w * scale(value) + 4:.1f}" y="{y + 14}" class="tick">'
            f"{value:.4g}{escape(unit)}</text>"
        )
    if limit is not None:
        x = left + plot_w * scale(limit)
        parts.append(
            f'<line class="limit" x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{height - 16}" '
            f'data-limit="{limit:g}"/><text x="{x:.1f}" y="{height - 4}" class="tick" '
            f'text-anchor="middle">{name} {limit:.4g}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _unit(signal: str) -> str:
    """A signal's unit, from its name (error_rate_percent, latency_p95_ms, memory_mb)."""
    for suffix, unit in (
        ("_percent", "%"),
        ("_ms", " ms"),
        ("_mb", " MB"),
        ("_per_minute", "/min"),
    ):
        if signal.endswith(suffix):
            return unit
    return ""
