"""How long ended runs are kept: "30d", "12h", a `timedelta`, or "forever".

A function's own `retention=` is stored in its registry config as `retention_seconds` (0 for
"forever"); a function without one follows the default (`--retain`, `STEPLINE_RETAIN`, 30 days).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from stepline import errors
from stepline._durations import Duration, parse_duration, period_text

Retention = timedelta | None
"""A retention period; None keeps runs forever."""
DEFAULT_RETENTION: Retention = timedelta(days=30)
FOREVER = "forever"
SHORTEST = timedelta(minutes=1)
CONFIG_KEY = "retention_seconds"
Source = Literal["function", "default"]


def parse_retention(value: Duration | None, *, field: str = "retention") -> Retention:
    """A retention from "30d", "12h", a `timedelta`, seconds, or "forever" / 0 (None).

    Raises:
        InvalidInput: Not a duration or "forever", or shorter than a minute; names `field`.
    """
    if isinstance(value, str) and value.strip().lower() in (FOREVER, "0"):
        return None
    if value is None:
        raise errors.InvalidInput(f'expected a duration like "30d" or "{FOREVER}"', field)
    try:
        period = parse_duration(value, field=field)
    except errors.InvalidInput:
        raise errors.InvalidInput(
            f'{value!r} is not a retention; write e.g. "30d", "12h" or "{FOREVER}"', field
        ) from None
    if period == timedelta():
        return None
    if period < SHORTEST:
        raise errors.InvalidInput(
            f"{value!r} is {period_text(period.total_seconds())}; a retention is at least "
            f'{period_text(SHORTEST.total_seconds())} (or "{FOREVER}")',
            field,
        )
    return period


def retention_config(retention: Retention) -> float:
    """The stored form: seconds, 0 for forever."""
    return 0.0 if retention is None else retention.total_seconds()


def retention_text(retention: Retention) -> str:
    """In words: "30d", "1d12h", "forever"."""
    return FOREVER if retention is None else period_text(retention.total_seconds())


def function_retention(config: Mapping[str, Any], default: Retention) -> tuple[Retention, Source]:
    """A function's retention from its registry config: its own, else `default`."""
    seconds = config.get(CONFIG_KEY)
    if seconds is None:
        return default, "default"
    return (timedelta(seconds=seconds) if seconds else None), "function"


def retention_view(config: Mapping[str, Any], default: Retention) -> dict[str, Any]:
    """What the API and the dashboard say of a function's retention."""
    retention, source = function_retention(config, default)
    return {
        "seconds": None if retention is None else retention.total_seconds(),
        "text": retention_text(retention),
        "source": source,
    }
