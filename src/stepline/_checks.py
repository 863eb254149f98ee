"""Runtime checks of values that typed callers get right but untyped callers may not."""

from __future__ import annotations

import re


def is_text(value: object, pattern: re.Pattern[str] | None = None) -> bool:
    """A non-blank string (matching `pattern`, when given)."""
    if not isinstance(value, str) or not value.strip():
        return False
    return pattern is None or pattern.match(value) is not None


def is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)
