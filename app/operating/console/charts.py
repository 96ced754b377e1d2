"""Small charts drawn server-side as inline SVG (no script, nothing fetched)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 560, 160, 28
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c")


def _frame(title: str, body: str, y_max: float) -> Markup:
    return Markup(
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}"><title>{escape(title)}</title>'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 4}" y2="{HEIGHT - PAD}" '
        f'stroke="#999"/><line x1="{PAD}" y1="6" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<text x="2" y="14" font-size="10">{y_max:.3g}</text>'
        f'<text x="2" y="{HEIGHT - PAD}" font-size="10">0</text>{body}</svg>'
    )


def bar_chart(title: str, bars: Sequence[tuple[str, float]]) -> Markup:
    """Bars left to right; the first and last labels under the axis."""
    if not bars:
        return Markup('<p class="empty">no data</p>')
    y_max = max(v for _, v in bars) or 1.0
    span = (WIDTH - PAD - 8) / len(bars)
    parts = []
    for i, (label, value) in enumerate(bars):
        h = (HEIGHT - PAD - 8) * value / y_max
        x = PAD + 2 + i * span
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{max(span - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{COLOURS[0]}"><title>{escape(label)}: {value:g}</title></rect>'
        )
    first, last = escape(bars[0][0]), escape(bars[-1][0])
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 10}" font-size="10">{first}</text>')
    parts.append(
        f'<text x="{WIDTH - 4}" y="{HEIGHT - 10}" font-size="10" text-anchor="end">{last}</text>'
    )
    return _frame(title, "".join(parts), y_max)


def line_chart(title: str, series: dict[str, Sequence[tuple[float, float]]]) -> Markup:
    """One polyline per series (x, y), with a legend; each series scaled to its own maximum
    when their ranges differ (a loss beside an F1), as the legend says."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return Markup('<p class="empty">no data yet</p>')
    xs = [x for points in series.values() for x, _ in points]
    x_min, x_max = min(xs), max(xs)
    parts, legend = [], []
    for i, (name, points) in enumerate(series.items()):
        y_max = max(y for _, y in points) or 1.0
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(
            f"{PAD + (WIDTH - PAD - 8) * ((x - x_min) / ((x_max - x_min) or 1)):.1f},"
            f"{HEIGHT - PAD - (HEIGHT - PAD - 8) * y / y_max:.1f}"
            for x, y in points
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
        )
        for x, y in points:
            cx = PAD + (WIDTH - PAD - 8) * ((x - x_min) / ((x_max - x_min) or 1))
            cy = HEIGHT - PAD - (HEIGHT - PAD - 8) * y / y_max
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{colour}"/>')
        legend.append(
            f'<text x="{PAD + 8 + 170 * i}" y="{HEIGHT - 8}" font-size="11" fill="{colour}">'
            f"{escape(name)} (max {y_max:.3g})</text>"
        )
    return _frame(title, "".join(parts + legend), 1.0)
