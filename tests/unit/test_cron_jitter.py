"""Cron jitter (SDK apps' `jitter`): a tick's delay is spread over the window, and stable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stepline.engine.scheduler import jitter


def test_jitter_stays_in_its_window_is_stable_and_spreads() -> None:
    ticks = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=m) for m in range(200)]
    delays = [jitter("shop-sync", tick, 30) for tick in ticks]

    assert all(timedelta() <= d < timedelta(seconds=30) for d in delays)
    assert delays == [jitter("shop-sync", tick, 30) for tick in ticks]  # any scheduler agrees
    assert len({round(d.total_seconds()) for d in delays}) > 20  # not one fixed delay
    assert jitter("shop-sync", ticks[0], 30) != jitter("other-fn", ticks[0], 30)
