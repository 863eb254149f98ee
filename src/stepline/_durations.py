"""Parse durations such as "30s", "1h30m" or `timedelta`, and time points, into one form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from stepline import errors

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")

Duration = str | timedelta | int | float


def parse_duration(value: Duration, *, field: str = "duration") -> timedelta:
    """Turn "30s", "10m", "1h30m", "1.5h", a number of seconds or a timedelta into a timedelta.

    Raises:
        InvalidInput: The value is not a duration or is negative.
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise errors.InvalidInput(f"expected a duration, got {value!r}", field)
    elif isinstance(value, int | float):
        result = timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise errors.InvalidInput(
                f'{value!r} is not a duration; write e.g. "30s", "10m" or "1h30m"', field
            )
        result = sum((float(n) * _UNITS[u] for n, u in parts), timedelta())
    else:
        raise errors.InvalidInput(f"expected a duration, got {type(value).__name__}", field)
    if result < timedelta():
        raise errors.InvalidInput(f"{value!r} is negative", field)
    return result


def require_aware(value: datetime, *, field: str = "datetime") -> datetime:
    """Return `value` in UTC; naive datetimes are refused because their zone is a guess."""
    if not isinstance(value, datetime):
        raise errors.InvalidInput(f"expected a datetime, got {type(value).__name__}", field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise errors.InvalidInput(
            "naive datetime; give it a time zone, e.g. datetime.now(UTC)", field
        )
    return value.astimezone(UTC)


def format_duration(seconds: float) -> str:
    """Render a duration for people: 850ms, 12.3s, 4m05s, 2h10m."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


_PERIOD_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def period_text(seconds: float) -> str:
    """A period as written in options: 1m, 1h30m, 1d, 2.5s, 500ms."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    whole, parts = int(seconds), []
    for unit, size in _PERIOD_UNITS:
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    rest = whole + seconds % 1
    if rest:
        parts.append(f"{rest:g}s")
    return "".join(parts)
