"""PURE: charts drawn on the server as SVG: a bar chart of counts and a sparkline.

No script, no style attributes (the page's CSS colours them by class), every
label escaped. ``marks`` pick out bars to show apart (a surge, say): the caller
decides which; a chart marks nothing by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

MAX_BAR_WIDTH = 28  # px: a bar stays a bar when a chart has few slots


@dataclass(frozen=True)
class Bar:
    label: str  # what the bar counts, shown as its tooltip ("2026-11-27: 12")
    value: int
    marked: bool = False


def bar_chart(
    bars: Sequence[Bar], *, title: str, width: int = 600, height: int = 140, element_id: str | None = None
) -> Markup:
    """Bars scaled to the largest value, with the largest value and the first and last labels as axis text."""
    top, bottom = 20, 22  # room for the scale above and the labels below
    plot = height - top - bottom
    busiest = max((bar.value for bar in bars), default=0)
    step = width / max(len(bars), 1)
    gap = 1 if step > 3 else 0
    thickness = max(min(round(step - gap, 2), MAX_BAR_WIDTH), 0.5)  # one day of seven is a bar, not a block
    parts = [_open("chart", title, width, height, element_id)]
    parts.append(f'<text class="axis" x="0" y="15">max {busiest}</text>')
    parts.append(f'<line class="base" x1="0" y1="{top + plot}" x2="{width}" y2="{top + plot}"/>')
    for index, bar in enumerate(bars):
        size = round(bar.value / busiest * plot, 2) if busiest else 0
        if bar.value and size < 1:
            size = 1.0  # any count at all shows
        x = round(index * step + (step - gap - thickness) / 2, 2) if thickness < step - gap else round(index * step, 2)
        kind = "bar marked" if bar.marked else "bar"
        parts.append(
            f'<rect class="{kind}" x="{x}" y="{round(top + plot - size, 2)}" width="{thickness}"'
            f' height="{size}"><title>{escape(bar.label)}: {bar.value}</title></rect>'
        )
    if bars:
        parts.append(f'<text class="axis" x="0" y="{height - 4}">{escape(bars[0].label)}</text>')
        if len(bars) > 1:
            last = escape(bars[-1].label)
            parts.append(f'<text class="axis" x="{width}" y="{height - 4}" text-anchor="end">{last}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(
    values: Sequence[int], *, title: str, width: int = 120, height: int = 24, marks: Sequence[int] = ()
) -> Markup:
    """A small line of ``values`` (oldest first); indexes in ``marks`` get a dot."""
    parts = [_open("spark", title, width, height, None, stretch=True)]
    if values:
        busiest = max(max(values), 1)
        step = width / max(len(values) - 1, 1)
        points = [
            (round(i * step, 2), round(height - 2 - value / busiest * (height - 4), 2))
            for i, value in enumerate(values)
        ]
        if len(points) == 1:
            points.append((width, points[0][1]))
        path = " ".join(f"{x},{y}" for x, y in points)
        parts.append(f'<polyline class="line" fill="none" points="{path}"/>')
        for index in marks:
            if 0 <= index < len(values):
                x, y = points[index]
                parts.append(f'<circle class="mark" cx="{x}" cy="{y}" r="2.5"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _open(kind: str, title: str, width: int, height: int, element_id: str | None, *, stretch: bool = False) -> str:
    ident = f' id="{escape(element_id)}"' if element_id else ""
    aspect = ' preserveAspectRatio="none"' if stretch else ""  # a sparkline may stretch; text must not
    return (
        f'<svg{ident} class="{kind}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}"{aspect} role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    )
