"""Small charts as inline SVG, written by hand: no plotting library, nothing to download.

Three kinds cover the report: `line_chart` (best-so-far curves), `strip_chart` (each trial's gain
as a dot, a method's mean and 95% interval as a bar) and `bar_chart` (horizontal bars, grouped
when there are several series). Each returns one ``<svg>`` string; colours come from
`colour_for`, so a method has the same colour in every chart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")
FIXED = {"supervised": "#8c8c8c", "uda-default": "#937860"}
WIDTH = 520  # two charts side by side in the report
LEGEND = 160  # room for the legend, right of the plot
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def colour_for(name: str, order: list[str]) -> str:
    if name in FIXED:
        return FIXED[name]
    free = [n for n in order if n not in FIXED]
    return COLOURS[free.index(name) % len(COLOURS)] if name in free else COLOURS[-1]


@dataclass(frozen=True)
class Scale:
    """Maps data values in [lo, hi] to pixels in [a, b]."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.a + (value - self.lo) / span * (self.b - self.a)


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi] (whole numbers only when ``integer``)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 0.1
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    step = max(step, 1) if integer else step
    first = math.floor(lo / step) * step
    return [round(first + i * step, 10) for i in range(int(math.ceil((hi - first) / step)) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _frame(height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" {FONT}>'
        f'<text x="8" y="16" font-size="13" font-weight="600">{escape(title)}</text>'
        + "".join(body) + "</svg>"
    )


def _x_axis(scale: Scale, ticks: list[float], y: float, top: float, label: str) -> list[str]:
    out = [f'<line x1="{scale.a}" y1="{y}" x2="{scale.b}" y2="{y}" stroke="#333"/>']
    for t in ticks:
        x = scale(t)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{y}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 14}" text-anchor="middle">{_fmt(t)}</text>')
    out.append(f'<text x="{(scale.a + scale.b) / 2:.1f}" y="{y + 30}" text-anchor="middle">{escape(label)}</text>')
    return out


def _y_axis(scale: Scale, ticks: list[float], x0: float, x1: float, label: str) -> list[str]:
    out = [f'<line x1="{x0}" y1="{scale.a}" x2="{x0}" y2="{scale.b}" stroke="#333"/>']
    for t in ticks:
        y = scale(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    middle = (scale.a + scale.b) / 2
    out.append(f'<text transform="translate(12 {middle:.1f}) rotate(-90)" text-anchor="middle">{escape(label)}</text>')
    return out


def _legend(names: list[str], colours: list[str], x: float, y: float) -> list[str]:
    out = []
    for i, (name, colour) in enumerate(zip(names, colours)):
        out.append(f'<rect x="{x}" y="{y + i * 16 - 9}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="{y + i * 16}">{escape(name)}</text>')
    return out


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, xlabel: str, ylabel: str,
               order: list[str], reference: dict[str, float] | None = None) -> str:
    """Step lines (best so far) per series; ``reference`` values as dashed horizontal lines."""
    reference = {k: v for k, v in (reference or {}).items() if math.isfinite(v)}
    points = [p for pts in series.values() for p in pts]
    if not points:
        return _frame(60, title, ['<text x="8" y="40">no evaluated trials yet</text>'])
    height, left, right, top, bottom = 300, 56, WIDTH - LEGEND, 28, 300 - 44
    xs = [p[0] for p in points]
    ys = [p[1] for p in points] + list(reference.values())
    x_ticks = nice_ticks(min(0.0, min(xs)), max(xs), integer=all(float(x).is_integer() for x in xs))
    pad = 0.05 * (max(ys) - min(ys))  # keep lines (the reference, the best) off the frame
    y_ticks = nice_ticks(min(ys) - pad, max(ys) + pad)
    sx = Scale(x_ticks[0], x_ticks[-1], left, right)
    sy = Scale(y_ticks[0], y_ticks[-1], bottom, top)
    body = _y_axis(sy, y_ticks, left, right, ylabel) + _x_axis(sx, x_ticks, bottom, top, xlabel)
    names, colours = [], []
    for name, value in reference.items():
        colour = colour_for(name, order)
        body.append(f'<line x1="{left}" y1="{sy(value):.1f}" x2="{right}" y2="{sy(value):.1f}" stroke="{colour}" stroke-dasharray="5 4"/>')
        names.append(f"{name} (mean)")
        colours.append(colour)
    for name, pts in series.items():
        if not pts:
            continue
        colour = colour_for(name, order)
        path = [f"M{sx(pts[0][0]):.1f},{sy(pts[0][1]):.1f}"]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            path.append(f"H{sx(x1):.1f}V{sy(y1):.1f}")
        body.append(f'<path d="{"".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in pts]
        names.append(name)
        colours.append(colour)
    body += _legend(names, colours, right + 14, top + 12)
    return _frame(height, title, body)


def strip_chart(groups: dict[str, list[float]], intervals: dict[str, tuple[float, float, float]], title: str,
                xlabel: str, order: list[str]) -> str:
    """One row per group: its values as dots; (mean, low, high) as a tick and a bar."""
    rows = [name for name in groups if groups[name]]
    if not rows:
        return _frame(60, title, ['<text x="8" y="40">no paired gains yet</text>'])
    row_h, left, right, top = 34, 110, WIDTH - 24, 30
    bottom = top + row_h * len(rows)
    values = [v for name in rows for v in groups[name]] + [0.0]
    values += [v for name in rows for v in intervals.get(name, ()) if math.isfinite(v)]
    ticks = nice_ticks(min(values), max(values))
    sx = Scale(ticks[0], ticks[-1], left, right)
    body = _x_axis(sx, ticks, bottom, top, xlabel)
    body.append(f'<line x1="{sx(0):.1f}" y1="{top}" x2="{sx(0):.1f}" y2="{bottom}" stroke="#333" stroke-dasharray="3 3"/>')
    for i, name in enumerate(rows):
        y = top + row_h * i + row_h / 2
        colour = colour_for(name, order)
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(name)}</text>')
        mean, low, high = intervals.get(name, (math.nan, math.nan, math.nan))
        if math.isfinite(low) and math.isfinite(high):
            body.append(f'<line x1="{sx(low):.1f}" y1="{y:.1f}" x2="{sx(high):.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="6" stroke-opacity="0.35"/>')
        if math.isfinite(mean):
            body.append(f'<line x1="{sx(mean):.1f}" y1="{y - 9:.1f}" x2="{sx(mean):.1f}" y2="{y + 9:.1f}" stroke="{colour}" stroke-width="2"/>')
        for j, v in enumerate(groups[name]):
            jitter = ((j * 7) % 5 - 2) * 2.0  # fixed offsets, so equal values stay visible
            body.append(f'<circle cx="{sx(v):.1f}" cy="{y + jitter:.1f}" r="3" fill="{colour}" fill-opacity="0.8"><title>{_fmt(v)}</title></circle>')
    return _frame(bottom + 40, title, body)


def bar_chart(categories: list[str], series: dict[str, list[float]], title: str, xlabel: str,
              colours: dict[str, str] | None = None) -> str:
    """Horizontal bars, one group per category and one bar per series in it."""
    if not categories or not series:
        return _frame(60, title, ['<text x="8" y="40">nothing to show</text>'])
    names = list(series)
    colours = colours or {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(names)}
    bar_h = 10
    group_h = bar_h * len(names) + 8
    left, right, top = 110, WIDTH - (LEGEND if len(names) > 1 else 24), 30
    bottom = top + group_h * len(categories)
    values = [v for vs in series.values() for v in vs if math.isfinite(v)] + [0.0]
    ticks = nice_ticks(min(values), max(values))
    sx = Scale(ticks[0], ticks[-1], left, right)
    body = _x_axis(sx, ticks, bottom, top, xlabel)
    for i, category in enumerate(categories):
        y0 = top + group_h * i + 4
        body.append(f'<text x="{left - 8}" y="{y0 + group_h / 2:.1f}" text-anchor="end">{escape(category)}</text>')
        for j, name in enumerate(names):
            value = series[name][i]
            if not math.isfinite(value):
                continue
            x0, x1 = sorted((sx(0), sx(value)))
            body.append(
                f'<rect x="{x0:.1f}" y="{y0 + j * bar_h:.1f}" width="{max(x1 - x0, 0.5):.1f}" height="{bar_h - 1}" '
                f'fill="{colours[name]}"><title>{escape(name)}: {_fmt(value)}</title></rect>'
            )
    if len(names) > 1:
        body += _legend(names, [colours[n] for n in names], right + 14, top + 12)
    return _frame(bottom + 40, title, body)
