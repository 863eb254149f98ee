"""Typed reads of the JSON values in an SDK's function configs: objects, strings, durations.

A `null` reads as absent (inngest-py strips nulls, the JS SDK omits undefined values). Each
read raises `InvalidInput` naming the wire field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from stepline import errors

_NANOSECONDS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # micro sign, as Go writes it
    "μs": 1_000,  # Greek mu, also read by Go
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 24 * 3600 * 1_000_000_000,
    "w": 7 * 24 * 3600 * 1_000_000_000,
}
_PART = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)"
_DURATION = re.compile(rf"(?:{_PART})+")
_SHOWN = 60


def shown(value: Any) -> str:
    """`value` as quoted in a message: its repr, cut short when long."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 3]}..."


def obj(value: Any, field: str) -> dict[str, Any]:
    """`value` as a JSON object, which must be present."""
    if value is None:
        raise errors.InvalidInput("is required: an object", field)
    if not isinstance(value, dict):
        raise errors.InvalidInput(f"expected an object, not {shown(value)}", field)
    return value


def required(raw: Mapping[str, Any], key: str, field: str, what: str) -> Any:
    """The value under `key`, which must be present; `what` names it, e.g. "an integer"."""
    value = raw.get(key)
    if value is None:
        raise errors.InvalidInput(f"is required: {what}", field)
    return value


def text(value: Any, field: str, what: str) -> str | None:
    """`value` as a string (None if absent); `what` names the kind, e.g. "a CEL expression"."""
    if value is not None and not isinstance(value, str):
        raise errors.InvalidInput(f"expected {what} (a string), not {shown(value)}", field)
    return value


def required_text(value: Any, field: str, what: str) -> str:
    """`value` as a string, which must be present."""
    found = text(value, field, what)
    if found is None:
        raise errors.InvalidInput(f"is required: {what}", field)
    return found


def duration(value: Any, field: str) -> timedelta | None:
    """A Go-style duration such as "30s", "1h30m", "1.5h", "2d" or "1w" (None if absent).

    Units: ns, us (µs), ms, s, m, h, d (24h) and w (168h). Numbers are not durations on the
    wire: the SDKs always send strings.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        raise errors.InvalidInput(
            f'{shown(value)} is not a duration; write e.g. "30s", "1h30m" or "2d"', field
        )
    nanoseconds = sum(
        (Decimal(number) * _NANOSECONDS[unit] for number, unit in re.findall(_PART, value)),
        Decimal(0),
    )
    return timedelta(microseconds=int((nanoseconds / 1000).to_integral_value()))


def required_duration(value: Any, field: str) -> timedelta:
    """A duration (see `duration`) that must be present."""
    found = duration(value, field)
    if found is None:
        raise errors.InvalidInput('is required: a duration such as "30s" or "1m"', field)
    return found
