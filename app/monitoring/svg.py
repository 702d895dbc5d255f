"""Small charts as inline SVG, rendered on the server: the console works offline, with no
script and no asset to fetch. Every text drawn is escaped; sizes are in user units and the
``viewBox`` lets the page scale them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

WIDTH, HEIGHT = 560, 180
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 12, 12, 26
# Distinct hues that stay readable on white (Okabe-Ito, for colour-blind readers).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#000000")
REFERENCE_COLOUR, LIVE_COLOUR = "#9aa5b1", "#0072b2"
LEGEND_CHARS = 32


@dataclass(frozen=True, slots=True)
class Interval:
    label: str
    value: float
    low: float
    high: float


def _frame(body: str, title: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _axes(top: float, y_format: Callable[[float], str], width: int, height: int) -> str:
    x0, y0 = MARGIN_LEFT, height - MARGIN_BOTTOM
    ticks = "".join(
        f'<text x="{x0 - 4}" y="{y0 - (y0 - MARGIN_TOP) * f:.1f}" font-size="10" '
        f'text-anchor="end" dominant-baseline="middle">{escape(y_format(top * f))}</text>'
        f'<line x1="{x0}" x2="{width - MARGIN_RIGHT}" y1="{y0 - (y0 - MARGIN_TOP) * f:.1f}" '
        f'y2="{y0 - (y0 - MARGIN_TOP) * f:.1f}" stroke="#eef1f4"/>'
        for f in (0.0, 0.5, 1.0)
    )
    return ticks + (
        f'<line x1="{x0}" x2="{x0}" y1="{MARGIN_TOP}" y2="{y0}" stroke="#66707a"/>'
        f'<line x1="{x0}" x2="{width - MARGIN_RIGHT}" y1="{y0}" y2="{y0}" stroke="#66707a"/>'
    )


def _legend(names: Sequence[str], colours: Sequence[str], height: int) -> str:
    """Swatches left to right, each as wide as its name (about 6 units a character)."""
    parts, x = [], float(MARGIN_LEFT)
    for name, colour in zip(names, colours, strict=True):
        shown = name if len(name) <= LEGEND_CHARS else name[: LEGEND_CHARS - 1] + "…"
        parts.append(
            f'<rect x="{x:.0f}" y="{height - 12}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14:.0f}" y="{height - 3}" font-size="10">{escape(shown)}</text>'
        )
        x += 30 + 6 * len(shown)
    return "".join(parts)


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    title: str,
    y_format: Callable[[float], str] = lambda v: f"{v:.3g}",
) -> str:
    """One polyline per named series of ``(time, value)`` points, on shared axes from 0."""
    points = [p for line in series.values() for p in line]
    if not points:
        return _frame(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="12" '
            f'fill="#66707a">no samples yet</text>',
            title,
        )
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    top = max(v for _, v in points) or 1.0
    span = (t1 - t0) or 1.0
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    lines = []
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    for (name, line), colour in zip(series.items(), colours, strict=True):
        coords = " ".join(
            f"{MARGIN_LEFT + (t - t0) / span * plot_w:.1f},"
            f"{MARGIN_TOP + plot_h - v / top * plot_h:.1f}"
            for t, v in line
        )
        lines.append(
            f'<polyline class="series" data-name="{escape(name)}" points="{coords}" fill="none" '
            f'stroke="{colour}" stroke-width="1.6"/>'
        )
    y_axis = HEIGHT - MARGIN_BOTTOM
    times = (
        f'<text x="{MARGIN_LEFT}" y="{y_axis + 11}" font-size="9">{_clock(t0)}</text>'
        f'<text x="{WIDTH - MARGIN_RIGHT}" y="{y_axis + 11}" font-size="9" text-anchor="end">'
        f"{_clock(t1)} UTC</text>"
    )
    return _frame(
        _axes(top, y_format, WIDTH, HEIGHT)
        + "".join(lines)
        + times
        + _legend(list(series), colours, HEIGHT + 12),
        title,
        height=HEIGHT + 12,
    )


def histogram_pair(
    labels: Sequence[str], reference: Sequence[float], live: Sequence[float], title: str
) -> str:
    """Reference and live shares per bin, side by side (grey: reference, blue: live)."""
    top = max([*reference, *live, 0.01])
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM - 12
    slot = plot_w / max(1, len(labels))
    bar = slot * 0.38
    bars = []
    for i, label in enumerate(labels):
        x = MARGIN_LEFT + i * slot + slot * 0.1
        for offset, share, colour, side in (
            (0.0, reference[i], REFERENCE_COLOUR, "reference"),
            (bar, live[i], LIVE_COLOUR, "live"),
        ):
            h = share / top * plot_h
            bars.append(
                f'<rect class="{side}" x="{x + offset:.1f}" y="{MARGIN_TOP + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)} {side}: {100 * share:.1f}%</title></rect>"
            )
        bars.append(
            f'<text x="{x + bar:.1f}" y="{MARGIN_TOP + plot_h + 11}" font-size="9" '
            f'text-anchor="middle">{escape(label[:10])}</text>'
        )
    axes = _axes(top, lambda v: f"{100 * v:.0f}%", WIDTH, HEIGHT - 12)
    legend = _legend(["reference", "live"], [REFERENCE_COLOUR, LIVE_COLOUR], HEIGHT)
    return _frame(axes + "".join(bars) + legend, title)


def interval_chart(rows: Sequence[Interval], title: str) -> str:
    """One dot per row with its interval as a whisker, rates in percent."""
    height = MARGIN_TOP + MARGIN_BOTTOM + 26 * max(1, len(rows))
    top = max([r.high for r in rows] + [0.001])
    plot_w = WIDTH - 120 - MARGIN_RIGHT
    parts = []
    for i, row in enumerate(rows):
        y = MARGIN_TOP + 13 + 26 * i

        def x(v: float) -> float:
            return 120 + v / top * plot_w

        parts.append(
            f'<g class="interval" data-label="{escape(row.label)}">'
            f'<text x="112" y="{y}" font-size="11" text-anchor="end" '
            f'dominant-baseline="middle">{escape(row.label[:16])}</text>'
            f'<line x1="{x(row.low):.1f}" x2="{x(row.high):.1f}" y1="{y}" y2="{y}" '
            f'stroke="{LIVE_COLOUR}" stroke-width="2"/>'
            f'<circle cx="{x(row.value):.1f}" cy="{y}" r="3.5" fill="{LIVE_COLOUR}"/>'
            f'<text x="{x(row.high) + 4:.1f}" y="{y}" font-size="10" dominant-baseline="middle">'
            f"{100 * row.value:.2f}% ({100 * row.low:.2f} … {100 * row.high:.2f})</text></g>"
        )
    axis = (
        f'<line x1="120" x2="{120 + plot_w}" y1="{height - MARGIN_BOTTOM + 4}" '
        f'y2="{height - MARGIN_BOTTOM + 4}" stroke="#66707a"/>'
        f'<text x="120" y="{height - 6}" font-size="10">0%</text>'
        f'<text x="{120 + plot_w}" y="{height - 6}" font-size="10" text-anchor="end">'
        f"{100 * top:.2f}%</text>"
    )
    return _frame("".join(parts) + axis, title, WIDTH, height)
