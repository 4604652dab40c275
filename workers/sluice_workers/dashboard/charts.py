"""Charts as SVG geometry computed on the server: the template draws rectangles and polylines.

No chart library and no script: numbers in, coordinates out. Colours come from CSS classes
(``s0``, ``s1``, ...) so the page's stylesheet decides them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PAD_LEFT = 44
PAD_BOTTOM = 20
PAD_TOP = 8
PAD_RIGHT = 8


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Line:
    points: str
    css: str
    title: str
    dots: list[tuple[float, float]] = field(default_factory=list)  # a lone minute still shows


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    top: float
    bottom: float
    left: float
    right: float
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    y_labels: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, name)
    empty: bool = True


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at least `value` (1 for nothing), for a readable axis."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def _frame(width: int, height: int, top_value: float, labels: Sequence[str], unit: str) -> Chart:
    bottom = height - PAD_BOTTOM
    right = width - PAD_RIGHT
    step = (right - PAD_LEFT) / max(len(labels), 1)
    every = max(1, math.ceil(len(labels) / 8))
    x_labels = [
        (PAD_LEFT + step * (i + 0.5), label)
        for i, label in enumerate(labels)
        if (len(labels) - 1 - i) % every == 0
    ]
    y_labels = [(bottom - (bottom - PAD_TOP) * f, _fmt(top_value * f) + unit) for f in (0.0, 0.5, 1.0)]
    return Chart(width, height, PAD_TOP, bottom, PAD_LEFT, right, x_labels=x_labels, y_labels=y_labels)


def stacked_bars(
    series: Mapping[str, Sequence[float]],
    labels: Sequence[str],
    *,
    width: int = 640,
    height: int = 170,
    unit: str = "",
) -> Chart:
    """One bar per label, stacked by series (e.g. jobs applied per minute, per kind)."""
    n = len(labels)
    totals = [sum(values[i] for values in series.values() if i < len(values)) for i in range(n)]
    top = nice_max(max(totals, default=0))
    chart = _frame(width, height, top, labels, unit)
    step = (chart.right - chart.left) / max(n, 1)
    scale = (chart.bottom - chart.top) / top
    bars: list[Bar] = []
    for i in range(n):
        y = chart.bottom
        for s, (name, values) in enumerate(series.items()):
            v = values[i] if i < len(values) else 0
            if v <= 0:
                continue
            h = v * scale
            y -= h
            bars.append(
                Bar(
                    chart.left + step * i + step * 0.12,
                    y,
                    step * 0.76,
                    h,
                    f"s{s}",
                    f"{name} {labels[i]}: {_fmt(v)}",
                )
            )
    legend = [(f"s{s}", name) for s, name in enumerate(series)]
    return Chart(
        chart.width, chart.height, chart.top, chart.bottom, chart.left, chart.right, bars, [],
        chart.x_labels, chart.y_labels, legend, empty=not any(totals),
    )  # fmt: skip


def lines(
    series: Mapping[str, Sequence[float | None]],
    labels: Sequence[str],
    *,
    width: int = 640,
    height: int = 170,
    unit: str = "",
) -> Chart:
    """One polyline per series; None values break nothing, they are skipped."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = nice_max(max(values, default=0))
    chart = _frame(width, height, top, labels, unit)
    step = (chart.right - chart.left) / max(len(labels), 1)
    scale = (chart.bottom - chart.top) / top
    out: list[Line] = []
    for s, (name, vs) in enumerate(series.items()):
        dots = [
            (chart.left + step * (i + 0.5), chart.bottom - v * scale)
            for i, v in enumerate(vs)
            if v is not None
        ]
        if dots:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in dots)
            out.append(Line(points, f"s{s}", name, dots))
    legend = [(f"s{s}", name) for s, name in enumerate(series)]
    return Chart(
        chart.width, chart.height, chart.top, chart.bottom, chart.left, chart.right, [], out,
        chart.x_labels, chart.y_labels, legend, empty=not values,
    )  # fmt: skip
