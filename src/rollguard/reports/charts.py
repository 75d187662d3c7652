"""Small inline SVG charts: no network, no JavaScript, no plotting library.

Each bar carries ``data-label`` and ``data-value`` attributes and a ``<title>``
tooltip, so a browser shows the numbers and a test can read them back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from html import escape

WIDTH, HEIGHT = 640, 220
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 44, 36, 24


def bar_chart(
    chart_id: str, title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = ""
) -> str:
    """A vertical bar chart as an ``<svg>`` element."""
    top = max(values, default=0.0)
    scale_max = _nice_ceiling(top)
    plot_w = WIDTH - MARGIN_LEFT - 8
    plot_h = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    slot = plot_w / max(1, len(values))
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{MARGIN_LEFT}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for tick in range(5):
        value = scale_max * tick / 4
        y = MARGIN_TOP + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{MARGIN_LEFT - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{_short(value)}</text>"
        )
    every = max(1, math.ceil(len(labels) / 10))
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot_h * value / scale_max if scale_max else 0.0
        x = MARGIN_LEFT + index * slot + slot * 0.15
        y = MARGIN_TOP + plot_h - height
        shown = f"{label}: {_short(value)}{unit}"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{height:.1f}" data-label="{escape(label)}" data-value="{value:g}">'
            f"<title>{escape(shown)}</title></rect>"
        )
        if index % every == 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 14}" '
                f'class="tick" text-anchor="middle">{escape(label)}</text>'
            )
    if not values:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def per_day(counts: dict[str, int], *, start: str, end: str) -> tuple[list[str], list[float]]:
    """Every day from ``start`` to ``end`` (ISO dates), zero where nothing happened."""
    first, last = date.fromisoformat(start[:10]), date.fromisoformat(end[:10])
    days = max(0, (last - first).days)
    labels = [(first + timedelta(days=n)).isoformat() for n in range(days + 1)]
    return labels, [float(counts.get(label, 0)) for label in labels]


def histogram(values: Sequence[float], *, bins: int = 10) -> tuple[list[str], list[float]]:
    """Equal-width bins over ``values`` labelled by their upper edge in seconds."""
    if not values:
        return [], []
    top = max(values)
    width = _nice_ceiling(top) / bins if top > 0 else 1.0
    counts = [0.0] * bins
    for value in values:
        counts[min(bins - 1, int(value / width))] += 1
    return [f"≤{_short(width * (n + 1))}s" for n in range(bins)], counts


def _nice_ceiling(value: float) -> float:
    """A round number at or above ``value`` for the axis (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _short(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
