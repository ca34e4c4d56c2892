"""Inline SVG bar charts for the statistics page: no script, no style attribute, no library.

A chart is drawn from display strings only ("12", "0", "<5", "x"), never from the true
counts, so a hidden cell cannot leak through the length of its bar: every hidden cell
gets the same short hatched stub. The numbers are written beside the bars and the page
puts a table with the same figures next to each chart for screen readers, so the SVG
itself is marked decorative for assistive technology.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 560
LABEL_W = 200
VALUE_W = 48
ROW_H = 24
BAR_H = 16
HIDDEN_STUB_W = 10


def _number(display: str) -> int | None:
    return int(display) if display.isdigit() else None


def bar_chart(rows: Sequence[tuple[str, str]], title: str, chart_id: str) -> Markup:
    """A horizontal bar chart of `(label, display)` rows; hidden cells get one fixed stub."""
    numbers = [n for _, d in rows if (n := _number(d)) is not None]
    top = max(numbers, default=0) or 1
    track = WIDTH - LABEL_W - VALUE_W - 8
    height = ROW_H * len(rows) + 4
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" aria-hidden="true" focusable="false">',
        f"<title>{escape(title)}</title>",
        f'<defs><pattern id="hatch-{chart_id}" width="4" height="4" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect class="hatch-line" width="2" height="4"/>'
        "</pattern></defs>",
    ]
    for i, (label, display) in enumerate(rows):
        y = 2 + i * ROW_H
        text_y = y + ROW_H // 2 + 5
        parts.append(
            f'<text class="chart-label" x="{LABEL_W - 8}" y="{text_y}" '
            f'text-anchor="end">{escape(_clip(label))}</text>'
        )
        value = _number(display)
        if value is None:
            parts.append(
                f'<rect class="bar bar-hidden" x="{LABEL_W}" y="{y + 4}" '
                f'width="{HIDDEN_STUB_W}" height="{BAR_H}" fill="url(#hatch-{chart_id})"/>'
            )
            value_x = LABEL_W + HIDDEN_STUB_W + 6
        else:
            width = round(track * value / top) if value else 0
            if width:
                parts.append(
                    f'<rect class="bar" x="{LABEL_W}" y="{y + 4}" width="{width}" '
                    f'height="{BAR_H}"/>'
                )
            value_x = LABEL_W + width + 6
        parts.append(
            f'<text class="chart-value" x="{value_x}" y="{text_y}">{escape(display)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _clip(label: str, limit: int = 28) -> str:
    """Long labels are cut in the chart; the table beside it has them in full."""
    return label if len(label) <= limit else label[: limit - 1] + "…"
