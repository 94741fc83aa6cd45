"""Server-side SVG charts for the HTML report: no scripts, no external assets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

_WIDTH = 720
_FONT = 'font-family="Helvetica, Arial, sans-serif" font-size="12"'
PALETTE = ("#c0392b", "#2e86c1", "#27ae60", "#8e44ad", "#d68910")


def _svg(chart_id: str, title: str, height: int, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(chart_id)}" '
        f'width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<rect width="{_WIDTH}" height="{height}" fill="#ffffff"/>'
        f'<text x="8" y="18" {_FONT} font-weight="bold">{escape(title)}</text>{body}</svg>'
    )


def _empty(chart_id: str, title: str) -> str:
    return _svg(chart_id, title, 60, f'<text x="8" y="44" {_FONT} fill="#777777">No data.</text>')


def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float]],
    value_text: Callable[[float], str],
    max_value: float | None = None,
    color: str = PALETTE[1],
) -> str:
    """Horizontal bars, one per (label, value), with the value written at the bar's end."""
    if not bars:
        return _empty(chart_id, title)
    top = max_value if max_value is not None else max((v for _, v in bars), default=0.0)
    top = top or 1.0
    label_w, value_w, row_h = 180, 90, 22
    plot_w = _WIDTH - label_w - value_w - 16
    parts = []
    for index, (label, value) in enumerate(bars):
        y = 30 + index * row_h
        width = max(0.0, min(value, top)) / top * plot_w
        short = label if len(label) <= 28 else label[:27] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" {_FONT}>{escape(short)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row_h - 6}" '
            f'fill="{color}"><title>{escape(label)}: {escape(value_text(value))}</title></rect>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 15}" {_FONT}>'
            f"{escape(value_text(value))}</text>"
        )
    return _svg(chart_id, title, 40 + len(bars) * row_h, "".join(parts))


def line_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    value_text: Callable[[float], str],
) -> str:
    """Lines over an ordered axis (days), one per named series, with a legend and y ticks."""
    if not labels:
        return _empty(chart_id, title)
    height, left, right, top, bottom = 280, 70, 16, 40, 50
    plot_w, plot_h = _WIDTH - left - right, height - top - bottom
    peak = max((v for _, values in series for v in values), default=0.0) or 1.0
    step = plot_w / max(1, len(labels) - 1)

    def xy(index: int, value: float) -> tuple[float, float]:
        x = left + (index * step if len(labels) > 1 else plot_w / 2)
        return x, top + plot_h - value / peak * plot_h

    parts = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#999999"/>'
    ]
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eeeeee"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>'
            f"{escape(value_text(value))}</text>"
        )
    every = max(1, len(labels) // 8)
    for index, label in enumerate(labels):
        if index % every == 0 or index == len(labels) - 1:
            x, _ = xy(index, 0)
            anchor = "end" if index == len(labels) - 1 and index else "middle"
            parts.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="{anchor}" {_FONT}>'
                f"{escape(label)}</text>"
            )
    for number, (name, values) in enumerate(series):
        color = PALETTE[number % len(PALETTE)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
        # Later series are dashed so that equal values stay visible on top of each other.
        dash = ' stroke-dasharray="6 4"' if number else ""
        parts.append(
            f'<polyline class="series" points="{points}" fill="none" stroke="{color}" '
            f'stroke-width="2"{dash}/>'
        )
        for index, value in enumerate(values):
            x, y = xy(index, value)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>'
                f"{escape(labels[index])} {escape(name)}: {escape(value_text(value))}"
                "</title></circle>"
            )
        lx = left + number * 200
        parts.append(
            f'<rect x="{lx}" y="{height - 18}" width="12" height="12" fill="{color}"/>'
            f'<text x="{lx + 18}" y="{height - 8}" {_FONT}>{escape(name)}</text>'
        )
    return _svg(chart_id, title, height, "".join(parts))
