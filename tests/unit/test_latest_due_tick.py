"""Which cron tick is due at a moment: the last one in (after, now], in the schedule's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import stepline
from stepline.engine.scheduler import latest_due_tick


def test_latest_due_tick_is_the_last_tick_up_to_now() -> None:
    hourly = stepline.cron("0 * * * *")
    after = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)

    assert latest_due_tick(hourly, after, datetime(2026, 1, 1, 12, 59, tzinfo=UTC)) is None
    assert latest_due_tick(hourly, after, datetime(2026, 1, 1, 13, tzinfo=UTC)) == datetime(
        2026, 1, 1, 13, tzinfo=UTC
    )
    assert latest_due_tick(hourly, after, datetime(2026, 1, 6, 9, 15, tzinfo=UTC)) == datetime(
        2026, 1, 6, 9, tzinfo=UTC
    )


def test_next_tick_is_read_in_the_schedule_zone() -> None:
    midnight = stepline.cron("0 0 * * *", tz="Africa/Johannesburg")
    tick = midnight.next_after(datetime(2026, 1, 1, 12, tzinfo=UTC))
    assert tick == datetime(2026, 1, 1, 22, tzinfo=UTC)
    assert tick.isoformat() == "2026-01-02T00:00:00+02:00"
