"""Server-rendered SVG charts of the audit log: calls and errors, latency percentiles, over time.

Geometry is computed here; `dashboard/_charts.html` draws it. No script, no external library."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 12, 28
NICE_INTERVALS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
LATENCY_LINES = (("p50", "#1d4ed8", ""), ("p95", "#b54708", "6 3"), ("p99", "#b42318", "2 3"))


def bucket_for(span_seconds: float, target: int = 48) -> int:
    """The smallest "round" bucket that keeps the chart at or under `target` bars."""
    for seconds in NICE_INTERVALS:
        if span_seconds / seconds <= target:
            return seconds
    return NICE_INTERVALS[-1]


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    color: str
    dash: str
    points: str


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    summary: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list[Bar])
    error_bars: list[Bar] = field(default_factory=list[Bar])
    lines: list[Line] = field(default_factory=list[Line])
    y_ticks: list[tuple[float, str]] = field(default_factory=list[tuple[float, str]])
    x_ticks: list[tuple[float, str]] = field(default_factory=list[tuple[float, str]])
    plot: tuple[float, float, float, float] = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _y_ticks(top: float) -> list[tuple[float, str]]:
    bottom_y, top_y = HEIGHT - BOTTOM, TOP
    divisions = 4 if (top / 4).is_integer() else 5
    ticks: list[tuple[float, str]] = []
    for index in range(divisions + 1):
        value = top * index / divisions
        ticks.append((bottom_y - (bottom_y - top_y) * index / divisions, f"{value:g}"))
    return ticks


def _x_ticks(series: Sequence[Mapping[str, Any]], slot: float) -> list[tuple[float, str]]:
    """Times of day for periods up to two days (the date on the first tick), dates beyond."""
    if not series:
        return []
    every = max(1, math.ceil(len(series) / 6))
    days = sorted({str(point["start"])[:10] for point in series})
    by_time = len(days) <= 2
    ticks: list[tuple[float, str]] = []
    for index in range(0, len(series), every):
        start = str(series[index]["start"])
        label = start[11:16] if by_time else start[5:10]
        if by_time and index == 0 and len(days) > 1:
            label = f"{start[5:10]} {label}"
        ticks.append((LEFT + slot * (index + 0.5), label))
    return ticks


def calls_chart(series: Sequence[Mapping[str, Any]]) -> Chart:
    total = sum(int(point["calls"]) for point in series)
    errors = sum(int(point["errors"]) for point in series)
    summary = f"{total} calls, {errors} failed, in {len(series)} intervals"
    if not series:
        return Chart("Calls and errors", "No calls in this period")
    top = _nice_max(max(int(point["calls"]) for point in series))
    slot = (WIDTH - LEFT - RIGHT) / len(series)
    scale = (HEIGHT - TOP - BOTTOM) / top
    bars: list[Bar] = []
    error_bars: list[Bar] = []
    for index, point in enumerate(series):
        x = LEFT + slot * index + slot * 0.15
        width = max(1.0, slot * 0.7)
        calls, failed = int(point["calls"]), int(point["errors"])
        when = str(point["start"])[:16].replace("T", " ")
        bars.append(Bar(x, HEIGHT - BOTTOM - calls * scale, width, calls * scale, f"{when}: {calls} calls"))
        if failed:
            error_bars.append(
                Bar(x, HEIGHT - BOTTOM - failed * scale, width, failed * scale, f"{when}: {failed} failed")
            )
    return Chart(
        "Calls and errors",
        summary,
        bars=bars,
        error_bars=error_bars,
        y_ticks=_y_ticks(top),
        x_ticks=_x_ticks(series, slot),
    )


def latency_chart(series: Sequence[Mapping[str, Any]]) -> Chart:
    values = [float(point[name]) for point in series for name, _, _ in LATENCY_LINES if point.get(name) is not None]
    if not values:
        return Chart("Latency (ms)", "No calls in this period")
    top = _nice_max(max(values))
    slot = (WIDTH - LEFT - RIGHT) / len(series)
    scale = (HEIGHT - TOP - BOTTOM) / top
    lines: list[Line] = []
    for name, color, dash in LATENCY_LINES:
        points = [
            f"{LEFT + slot * (index + 0.5):.1f},{HEIGHT - BOTTOM - float(point[name]) * scale:.1f}"
            for index, point in enumerate(series)
            if point.get(name) is not None
        ]
        lines.append(Line(name, color, dash, " ".join(points)))
    p50 = sorted(float(point["p50"]) for point in series if point.get("p50") is not None)
    summary = (
        f"latency percentiles per interval; median of p50 {p50[len(p50) // 2]:.1f} ms, highest p99 {max(values):.1f} ms"
    )
    return Chart("Latency (ms)", summary, lines=lines, y_ticks=_y_ticks(top), x_ticks=_x_ticks(series, slot))
