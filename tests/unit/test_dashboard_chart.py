"""The function page's chart: hourly buckets of the last 24 hours, nearest-rank percentiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stepline.server.dashboard_chart import HOURS, hourly_chart, percentile, window_start
from stepline.store.base import RunTiming

NOW = datetime(2026, 3, 4, 15, 42, tzinfo=UTC)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 21)]
    assert percentile(values, 0.5) == 10.0
    assert percentile(values, 0.95) == 19.0
    assert percentile([7.0], 0.95) == 7.0


def test_runs_fall_in_their_hour_and_the_current_hour_is_last() -> None:
    start = window_start(NOW)
    assert start == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    timings = [
        RunTiming(status="COMPLETED", ended_at=start - timedelta(seconds=1), seconds=1.0),
        RunTiming(status="COMPLETED", ended_at=start, seconds=2.0),
        RunTiming(status="FAILED", ended_at=NOW, seconds=None),  # cancelled before it started
        RunTiming(status="COMPLETED", ended_at=NOW, seconds=3.0),
    ]

    chart = hourly_chart(timings, NOW)

    assert len(chart.hours) == HOURS
    assert [h.ended for h in chart.hours if h.ended] == [1, 2]
    assert (chart.hours[0].label, chart.hours[-1].label) == ("16:00", "15:00")
    assert chart.hours[-1].rate == "50%" and chart.hours[-1].p50 == "3.0s"
    assert len(chart.bars) == 2 and len(chart.p50_dots) == len(chart.p95_dots) == 2
    assert chart.summary == "66.7% of 3 runs completed; p50 2.0s, p95 3.0s in the last 24 hours."


def test_no_runs_draw_nothing_and_say_so() -> None:
    chart = hourly_chart([], NOW)
    assert chart.bars == [] and chart.p50_line == "" and chart.duration_max == ""
    assert chart.summary == "No runs ended in the last 24 hours."
