"""Durations and time points as users write them: "30s", "1h30m", numbers, timedeltas, and
aware datetimes only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from stepline import errors
from stepline._durations import Duration, parse_duration, require_aware


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        (" 1H 30M ", timedelta(hours=1, minutes=30)),
        (45, timedelta(seconds=45)),
        (0.5, timedelta(milliseconds=500)),
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_parse_duration_accepts_the_documented_forms(text: Duration, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "soon", "30", "30 seconds", "1h30", "-5s", -1, True])
def test_parse_duration_refuses_anything_else_naming_the_field(bad: Duration) -> None:
    with pytest.raises(errors.InvalidInput) as raised:
        parse_duration(bad, field="timeout")
    assert raised.value.field == "timeout"


def test_require_aware_converts_to_utc_and_refuses_naive_datetimes() -> None:
    tokyo = datetime(2026, 1, 1, 9, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert require_aware(tokyo) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(errors.InvalidInput, match="naive datetime"):
        require_aware(datetime(2026, 1, 1), field="when")
