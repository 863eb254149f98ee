"""A function's last 24 hours as a small inline SVG: success rate, and p50/p95 run duration.

One column per hour (the current hour last). Pure: built from `Store.function_timings`; the
template only places what this computes. A table of the same figures goes with it for screen
readers and for reading exact values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from stepline._durations import format_duration
from stepline.server.dashboard_models import Moment, moment, number
from stepline.store.base import RunTiming

HOURS = 24
WIDTH = 480.0
RATE_TOP, RATE_HEIGHT = 8.0, 50.0  # the success-rate band
TIME_TOP, TIME_HEIGHT = 78.0, 70.0  # the duration band, below it
HEIGHT = 162.0
TICK_HOURS = 6
COLUMN = WIDTH / HOURS


@dataclass(frozen=True, kw_only=True, slots=True)
class HourStat:
    """One hour: runs ended, the share that completed, and duration percentiles."""

    start: Moment
    label: str  # "14:00" (UTC)
    ended: int
    rate: str  # "80%" or "" without runs
    p50: str
    p95: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Bar:
    """A success-rate bar: its box in chart units and its tooltip."""

    x: str
    y: str
    width: str
    height: str
    title: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Dot:
    """A duration point: its centre and its tooltip."""

    cx: str
    cy: str
    title: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Chart:
    """The SVG's parts, its summary in words and the hourly table."""

    view_box: str
    width: str
    rate_axis: str  # the y of the success-rate band's base line
    time_axis: str  # the y of the duration band's base line
    label_y: str  # the y of the hour labels
    summary: str
    bars: list[Bar]
    p50_line: str
    p95_line: str
    p50_dots: list[Dot]
    p95_dots: list[Dot]
    duration_max: str
    ticks: list[tuple[str, str]]  # (x, "14:00") every six hours, under the chart
    first_hour: str
    last_hour: str
    hours: list[HourStat]


def window_start(now: datetime) -> datetime:
    """The start of the first hour shown: 23 whole hours before the current one."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    return hour - timedelta(hours=HOURS - 1)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted `values` (not empty): the smallest covering `share`."""
    rank = max(1, math.ceil(share * len(values)))
    return values[rank - 1]


def _f(value: float) -> str:
    return f"{value:.1f}"


def _buckets(timings: Sequence[RunTiming], start: datetime) -> list[list[RunTiming]]:
    buckets: list[list[RunTiming]] = [[] for _ in range(HOURS)]
    for timing in timings:
        index = int((timing.ended_at - start).total_seconds() // 3600)
        if 0 <= index < HOURS:
            buckets[index].append(timing)
    return buckets


def _hour(start: datetime, runs: Sequence[RunTiming]) -> tuple[HourStat, float | None, list[float]]:
    durations = sorted(t.seconds for t in runs if t.seconds is not None)
    rate = sum(t.status == "COMPLETED" for t in runs) / len(runs) if runs else None
    stat = HourStat(
        start=moment(start),
        label=f"{start:%H:%M}",
        ended=len(runs),
        rate=f"{number(round(rate * 100, 1))}%" if rate is not None else "",
        p50=format_duration(percentile(durations, 0.5)) if durations else "",
        p95=format_duration(percentile(durations, 0.95)) if durations else "",
    )
    return stat, rate, durations


def _summary(timings: Sequence[RunTiming]) -> str:
    if not timings:
        return "No runs ended in the last 24 hours."
    completed = sum(t.status == "COMPLETED" for t in timings)
    text = f"{number(round(completed / len(timings) * 100, 1))}% of {len(timings)} runs completed"
    durations = sorted(t.seconds for t in timings if t.seconds is not None)
    if durations:
        p50, p95 = percentile(durations, 0.5), percentile(durations, 0.95)
        text += f"; p50 {format_duration(p50)}, p95 {format_duration(p95)}"
    return text + " in the last 24 hours."


def hourly_chart(timings: Sequence[RunTiming], now: datetime) -> Chart:
    """The chart of the runs that ended in the 24 hours up to `now` (hours in UTC)."""
    start = window_start(now)
    hours, rates, percentiles = [], [], []
    buckets = _buckets(timings, start)
    for index, runs in enumerate(buckets):
        stat, rate, durations = _hour(start + timedelta(hours=index), runs)
        hours.append(stat)
        rates.append(rate)
        if durations:
            percentiles.append((index, percentile(durations, 0.5), percentile(durations, 0.95)))
    top = max((p95 for _, _, p95 in percentiles), default=0.0) or 1.0

    def x(index: int) -> float:
        return index * COLUMN + COLUMN / 2

    def y(seconds: float) -> float:
        return TIME_TOP + TIME_HEIGHT * (1 - seconds / top)

    bars = [
        Bar(
            x=_f(index * COLUMN + 2),
            y=_f(RATE_TOP + RATE_HEIGHT * (1 - rate)),
            width=_f(COLUMN - 4),
            height=_f(max(RATE_HEIGHT * rate, 1.0)),
            title=f"{hours[index].label} UTC: {hours[index].rate} of {hours[index].ended}",
        )
        for index, rate in enumerate(rates)
        if rate is not None
    ]
    p50_dots = [
        Dot(cx=_f(x(i)), cy=_f(y(p50)), title=f"{hours[i].label} UTC: p50 {hours[i].p50}")
        for i, p50, _ in percentiles
    ]
    p95_dots = [
        Dot(cx=_f(x(i)), cy=_f(y(p95)), title=f"{hours[i].label} UTC: p95 {hours[i].p95}")
        for i, _, p95 in percentiles
    ]
    return Chart(
        view_box=f"0 0 {number(WIDTH)} {number(HEIGHT)}",
        width=number(WIDTH),
        rate_axis=number(RATE_TOP + RATE_HEIGHT),
        time_axis=number(TIME_TOP + TIME_HEIGHT),
        label_y=number(HEIGHT - 2),
        summary=_summary([t for runs in buckets for t in runs]),
        bars=bars,
        p50_line=" ".join(f"{d.cx},{d.cy}" for d in p50_dots),
        p95_line=" ".join(f"{d.cx},{d.cy}" for d in p95_dots),
        p50_dots=p50_dots,
        p95_dots=p95_dots,
        duration_max=format_duration(top) if percentiles else "",
        ticks=[(_f(x(i)), hours[i].label) for i in range(TICK_HOURS - 1, HOURS - 1, TICK_HOURS)],
        first_hour=hours[0].label,
        last_hour=hours[-1].label,
        hours=hours,
    )
