"""Dependency-free SVG charts for `genai-apm report`: lines over time, stacked bars, bars, lanes.

The report is one HTML file that must open offline, so charts are drawn here as inline SVG
rather than by a JavaScript library from a CDN. Every chart carries its scales as data
attributes (``data-x-domain``, ``data-y-range``, ...) and every mark names its series
(``data-series``), so a test (or a curious reader) can map pixels back to values and check
them against the query that produced them. Hovering a point shows its value (``<title>``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKER_COLOUR = "#D55E00"
MARGIN = {"left": 64, "right": 16, "top": 28, "bottom": 40}


@dataclass(frozen=True)
class Series:
    """A named line: (x, y) points, x in epoch milliseconds; y None is a gap."""

    name: str
    points: Sequence[tuple[float, float | None]]


@dataclass(frozen=True)
class Marker:
    """A highlighted span of the x axis (an anomaly's window), with a hover label."""

    start: float
    end: float
    label: str


@dataclass(frozen=True)
class Scale:
    """Linear map from a data domain onto a pixel range (and back, for tests)."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, v: float) -> float:
        span = self.d1 - self.d0
        return self.r0 if span == 0 else self.r0 + (v - self.d0) / span * (self.r1 - self.r0)

    def invert(self, px: float) -> float:
        span = self.r1 - self.r0
        return self.d0 + (px - self.r0) / span * (self.d1 - self.d0)

    def attrs(self, axis: str) -> str:
        return (
            f'data-{axis}-domain="{self.d0!r},{self.d1!r}" '
            f'data-{axis}-range="{self.r0!r},{self.r1!r}"'
        )


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^n steps) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 10))
    return ticks


def time_ticks(lo_ms: float, hi_ms: float, count: int = 6) -> list[float]:
    """Tick times on whole minutes, hours or days, about ``count`` of them."""
    steps_min = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
    raw_min = max((hi_ms - lo_ms) / 60_000 / count, 1e-9)
    step = next((s for s in steps_min if s >= raw_min), steps_min[-1]) * 60_000
    first = math.ceil(lo_ms / step) * step
    return [first + i * step for i in range(int((hi_ms - first) // step) + 1)]


def format_time(ms: float, span_ms: float) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return t.strftime("%m-%d %H:%M" if span_ms > 86_400_000 else "%H:%M")


def format_number(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


def _svg_open(kind: str, title: str, width: int, height: int, extra: str = "") -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{kind}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" {extra}>',
        f'<text class="title" x="{MARGIN["left"]}" y="16">{escape(title)}</text>',
    ]


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out, cursor = [], x
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        out.append(
            f'<rect x="{cursor:.1f}" y="{y - 8:.1f}" width="10" height="10" fill="{colour}"/>'
        )
        out.append(
            f'<text class="legend" x="{cursor + 14:.1f}" y="{y + 1:.1f}">{escape(name)}</text>'
        )
        cursor += 24 + 7 * len(name)
    return out


def _y_axis(y: Scale, ticks: Sequence[float], x0: float, x1: float, unit: str) -> list[str]:
    out = []
    for t in ticks:
        py = y(t)
        out.append(f'<line class="grid" x1="{x0}" x2="{x1}" y1="{py:.1f}" y2="{py:.1f}"/>')
        out.append(
            f'<text class="tick" x="{x0 - 6}" y="{py + 4:.1f}" text-anchor="end">'
            f"{format_number(t)}</text>"
        )
    if unit:
        out.append(f'<text class="unit" x="4" y="{MARGIN["top"] - 6}">{escape(unit)}</text>')
    return out


def _time_axis(x: Scale, y_px: float) -> list[str]:
    out = []
    span = x.d1 - x.d0
    for t in time_ticks(x.d0, x.d1):
        px = x(t)
        out.append(f'<line class="axis" x1="{px:.1f}" x2="{px:.1f}" y1="{y_px}" y2="{y_px + 4}"/>')
        out.append(
            f'<text class="tick" x="{px:.1f}" y="{y_px + 16}" text-anchor="middle">'
            f"{format_time(t, span)}</text>"
        )
    out.append(f'<text class="unit" x="{x.r1}" y="{y_px + 28}" text-anchor="end">UTC</text>')
    return out


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    unit: str = "",
    markers: Sequence[Marker] = (),
    width: int = 560,
    height: int = 220,
) -> str:
    """Lines over time on a shared y scale starting at 0; markers shade their x spans."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if y is not None]
    if not xs:
        return empty_chart(title, width, height)
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:  # one window: give it some room
        x_lo, x_hi = x_lo - 30_000, x_hi + 30_000
    ticks = nice_ticks(0, max(ys, default=1) or 1)
    left, right = MARGIN["left"], width - MARGIN["right"]
    top, bottom = MARGIN["top"], height - MARGIN["bottom"]
    x = Scale(x_lo, x_hi, left, right)
    y = Scale(ticks[0], ticks[-1], bottom, top)
    out = _svg_open("line", title, width, height, f"{x.attrs('x')} {y.attrs('y')}")
    out += _y_axis(y, ticks, left, right, unit)
    out += _time_axis(x, bottom)
    for m in markers:
        a, b = x(max(m.start, x_lo)), x(min(m.end, x_hi))
        out.append(
            f'<rect class="marker" data-marker="anomaly" x="{a:.1f}" y="{top}" '
            f'width="{max(b - a, 3):.1f}" height="{bottom - top}" fill="{MARKER_COLOUR}" '
            f'fill-opacity="0.18"><title>{escape(m.label)}</title></rect>'
        )
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for px, py in s.points:  # a None splits the line: no bridge over missing windows
            if py is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(px):.2f},{y(py):.2f}")
        for run in (r for r in runs if r):
            out.append(
                f'<polyline data-series="{escape(s.name)}" fill="none" stroke="{colour}" '
                f'stroke-width="1.8" points="{" ".join(run)}"/>'
            )
        if len(s.points) <= 90:  # hover targets, while there are few enough to be useful
            for px, py in s.points:
                if py is not None:
                    when = format_time(px, 0)
                    out.append(
                        f'<circle cx="{x(px):.2f}" cy="{y(py):.2f}" r="2.2" fill="{colour}">'
                        f"<title>{escape(s.name)} {when}: {py:,.1f} {escape(unit)}</title>"
                        "</circle>"
                    )
    out += _legend([s.name for s in series], left + 8, height - 6)
    out.append("</svg>")
    return "\n".join(out)


def stacked_bars(
    title: str,
    categories: Sequence[str],
    stacks: Sequence[tuple[str, Sequence[float]]],
    *,
    unit: str = "",
    width: int = 560,
    height: int = 240,
) -> str:
    """One bar per category, its parts stacked in ``stacks`` order (values aligned with it)."""
    totals = [sum(v[i] or 0 for _, v in stacks) for i in range(len(categories))]
    if not categories:
        return empty_chart(title, width, height)
    ticks = nice_ticks(0, max(totals) or 1)
    left, right = MARGIN["left"], width - MARGIN["right"]
    top, bottom = MARGIN["top"], height - MARGIN["bottom"]
    y = Scale(ticks[0], ticks[-1], bottom, top)
    slot = (right - left) / len(categories)
    bar = max(slot * 0.8, 1)
    out = _svg_open("stacked-bars", title, width, height, y.attrs("y"))
    out += _y_axis(y, ticks, left, right, unit)
    label_every = max(1, math.ceil(len(categories) / 12))
    for i, category in enumerate(categories):
        x0 = left + i * slot + (slot - bar) / 2
        base = 0.0
        for j, (name, values) in enumerate(stacks):
            v = values[i] or 0
            if v:
                y_top, y_base = y(base + v), y(base)
                out.append(
                    f'<rect data-series="{escape(name)}" data-category="{escape(category)}" '
                    f'data-value="{v!r}" x="{x0:.2f}" y="{y_top:.2f}" width="{bar:.2f}" '
                    f'height="{y_base - y_top:.2f}" fill="{PALETTE[j % len(PALETTE)]}">'
                    f"<title>{escape(category)} {escape(name)}: {v:,.0f}</title></rect>"
                )
            base += v
        if i % label_every == 0:
            out.append(
                f'<text class="tick" x="{x0 + bar / 2:.1f}" y="{bottom + 16}" '
                f'text-anchor="middle">{escape(category)}</text>'
            )
    out += _legend([name for name, _ in stacks], left + 8, height - 6)
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(
    title: str,
    items: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    value_format: str = "{:,.2f}",
    width: int = 560,
    row_height: int = 18,
) -> str:
    """Horizontal bars, one per (label, value), in the given order."""
    if not items:
        return empty_chart(title, width, 120)
    label_width = min(220, 12 + 7 * max(len(label) for label, _ in items))
    left, right = label_width, width - 90
    top = MARGIN["top"]
    height = top + row_height * len(items) + 12
    x = Scale(0, max(v for _, v in items) or 1, left, right)
    out = _svg_open("bars", title, width, height, x.attrs("x"))
    for i, (label, value) in enumerate(items):
        py = top + i * row_height
        shown = value_format.format(value)
        out.append(
            f'<text class="tick" x="{left - 6}" y="{py + 13}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        out.append(
            f'<rect data-series="{escape(title)}" data-category="{escape(label)}" '
            f'data-value="{value!r}" x="{left}" y="{py + 2}" width="{x(value) - left:.2f}" '
            f'height="{row_height - 4}" fill="{PALETTE[0]}"><title>{escape(label)}: '
            f"{shown} {escape(unit)}</title></rect>"
        )
        out.append(f'<text class="tick" x="{x(value) + 4:.1f}" y="{py + 13}">{shown}</text>')
    out.append("</svg>")
    return "\n".join(out)


@dataclass(frozen=True)
class Lane:
    """One row of a timeline: spans of (start, end, state) in epoch milliseconds."""

    label: str
    spans: Sequence[tuple[float, float, str]]


STATE_COLOURS = {"ALARM": "#D55E00", "OK": "#009E73"}


def timeline(
    title: str,
    lanes: Sequence[Lane],
    x_lo: float,
    x_hi: float,
    *,
    width: int = 1140,
    row_height: int = 20,
) -> str:
    """Lanes of coloured spans over a shared time axis (alert states per rule and key)."""
    if not lanes:
        return empty_chart(title, width, 120)
    if x_hi <= x_lo:
        x_hi = x_lo + 60_000
    label_width = min(360, 12 + 7 * max(len(lane.label) for lane in lanes))
    top = MARGIN["top"]
    bottom = top + row_height * len(lanes)
    height = bottom + 30
    x = Scale(x_lo, x_hi, label_width, width - MARGIN["right"])
    out = _svg_open("timeline", title, width, height, x.attrs("x"))
    out += _time_axis(x, bottom)
    for i, lane in enumerate(lanes):
        py = top + i * row_height
        out.append(
            f'<text class="tick" x="{label_width - 6}" y="{py + 14}" text-anchor="end">'
            f"{escape(lane.label)}</text>"
        )
        for start, end, state in lane.spans:
            a, b = x(start), x(end)
            span = f"{format_time(start, 0)}-{format_time(end, 0)}"
            out.append(
                f'<rect data-series="{escape(lane.label)}" data-state="{escape(state)}" '
                f'x="{a:.2f}" y="{py + 3}" width="{max(b - a, 2):.2f}" '
                f'height="{row_height - 6}" fill="{STATE_COLOURS.get(state, "#999")}">'
                f"<title>{escape(lane.label)} {escape(state)} {span} UTC</title></rect>"
            )
    out.append("</svg>")
    return "\n".join(out)


def empty_chart(title: str, width: int, height: int) -> str:
    return "\n".join(
        [
            *_svg_open("empty", title, width, height),
            f'<text class="nodata" x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            "no data</text>",
            "</svg>",
        ]
    )
