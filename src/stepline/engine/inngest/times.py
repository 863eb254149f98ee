"""Times and durations as SDK ops give them: Go-style durations or ISO-8601 times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stepline import errors
from stepline.engine.inngest import wire

MAX_WAIT = timedelta(days=365)


def go_duration(text: str) -> timedelta | None:
    """A Go-style duration ("30s", "1h30m", "1.5h", "2d", "1w"); None if `text` is not one."""
    try:
        return wire.duration(text.strip(), "duration")
    except errors.InvalidInput:
        return None


def moment(text: str) -> datetime | None:
    """An ISO-8601 / RFC 3339 time with a zone, in UTC; None if `text` is not one."""
    if len(text) < 10:
        return None
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return None if at.tzinfo is None else at.astimezone(UTC)


def until(text: object, now: datetime, *, default: timedelta | None = None) -> datetime | None:
    """When a sleep, wait or invoke ends: a time, or now plus a duration, at most a year on.

    Empty or missing is `default` from now (None: unreadable); a past time is now.
    """
    if text is None or text == "":
        return None if default is None else now + default
    if not isinstance(text, str):
        return None
    at = moment(text)
    if at is None:
        span = go_duration(text)
        if span is None:
            return None
        at = now + span
    return min(max(at, now), now + MAX_WAIT)
